package io.sluice.core.config;

/** A configuration value that is missing, malformed or out of range; the message names the key, the value and what was expected. */
public final class ConfigException extends RuntimeException {
    public ConfigException(String message) {
        super(message);
    }
}
