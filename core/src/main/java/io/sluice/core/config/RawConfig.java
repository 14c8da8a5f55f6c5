package io.sluice.core.config;

import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;

/**
 * Flat {@code dotted.key -> string} settings with where each value came from, in layers: defaults,
 * then the file given by {@code --config} (YAML, nested maps and lists flattened to dotted keys, or
 * .properties), then environment variables ({@code SLUICE_} + key upper-cased, dots and dashes as
 * underscores: {@code kafka.bootstrap} is {@code SLUICE_KAFKA_BOOTSTRAP}), then command-line
 * arguments ({@code --kafka.bootstrap host:9092} or {@code --kafka.bootstrap=host:9092}).
 *
 * <p>Typed getters throw {@link ConfigException} naming the key, its source, the value and what was
 * expected. {@link #rejectUnread()} turns typos into errors instead of silently ignored settings.
 */
public final class RawConfig {
    public static final String ENV_PREFIX = "SLUICE_";

    private final Map<String, String> values = new LinkedHashMap<>();
    private final Map<String, String> sources = new LinkedHashMap<>();
    private final Set<String> read = new HashSet<>();

    /** Keys under these prefixes are passed through (e.g. {@code kafka.properties.security.protocol}). */
    private final List<String> openPrefixes = new ArrayList<>();

    /** Consulted per key as it is read, below arguments and above the file. */
    private Map<String, String> env = Map.of();

    public static RawConfig empty() {
        return new RawConfig();
    }

    /**
     * The standard layering: {@code --config FILE} (or {@code SLUICE_CONFIG}), then environment, then
     * the other arguments. {@code aliases} map short option names ({@code --rate}) to keys.
     */
    public static RawConfig fromArgs(String[] args, Map<String, String> env, Map<String, String> aliases) {
        RawConfig raw = new RawConfig();
        raw.env = Map.copyOf(env);
        Map<String, String> argValues = parseArgs(args, aliases);
        String file = argValues.remove("config");
        if (file == null) {
            file = env.get(ENV_PREFIX + "CONFIG");
        }
        if (file != null) {
            raw.loadFile(Path.of(file));
        }
        argValues.forEach((k, v) -> raw.put(k, v, "argument --" + k));
        return raw;
    }

    public static String envName(String key) {
        return ENV_PREFIX + key.toUpperCase().replace('.', '_').replace('-', '_');
    }

    static Map<String, String> parseArgs(String[] args, Map<String, String> aliases) {
        Map<String, String> out = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--") || a.length() == 2) {
                throw new ConfigException("argument '" + a + "' is not understood: expected --key value or --key=value (see --help)");
            }
            String name = a.substring(2);
            String value;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            } else if (i + 1 < args.length && !args[i + 1].startsWith("--")) {
                value = args[++i];
            } else {
                value = "true"; // a bare flag
            }
            out.put(aliases.getOrDefault(name, name), value);
        }
        return out;
    }

    public RawConfig allowPrefix(String prefix) {
        openPrefixes.add(prefix);
        return this;
    }

    /** Where each key read so far came from, e.g. {@code environment SLUICE_KAFKA_BOOTSTRAP} or {@code argument --rate}. */
    public Map<String, String> sources() {
        return java.util.Collections.unmodifiableMap(sources);
    }

    /** Every key a reader asked for so far, whether it was given or not (the configuration docs are checked against these). */
    public Set<String> keysAsked() {
        return java.util.Collections.unmodifiableSet(new TreeSet<>(read));
    }

    /** The prefixes whose keys pass through unchecked ({@link #allowPrefix}). */
    public List<String> openPrefixes() {
        return List.copyOf(openPrefixes);
    }

    /** Every key given so far (arguments, file, put), in the order given; the environment is not included. */
    public Map<String, String> values() {
        return java.util.Collections.unmodifiableMap(values);
    }

    public RawConfig put(String key, String value, String source) {
        values.put(key, value);
        sources.put(key, source);
        return this;
    }

    public void loadFile(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new ConfigException("config file '" + file + "' (from --config) does not exist or is not a file");
        }
        String name = file.getFileName().toString();
        try (Reader r = Files.newBufferedReader(file)) {
            if (name.endsWith(".properties")) {
                Properties p = new Properties();
                p.load(r);
                for (String k : p.stringPropertyNames()) {
                    put(k, p.getProperty(k), "file " + file);
                }
            } else {
                Object doc = new Yaml(new SafeConstructor(new LoaderOptions())).load(r);
                if (doc != null && !(doc instanceof Map)) {
                    throw new ConfigException("config file '" + file + "' must hold a YAML mapping at the top level");
                }
                flatten("", doc, "file " + file);
            }
        } catch (IOException e) {
            throw new ConfigException("config file '" + file + "' cannot be read: " + e.getMessage());
        } catch (RuntimeException e) {
            if (e instanceof ConfigException) {
                throw e;
            }
            throw new ConfigException("config file '" + file + "' is not valid YAML: " + e.getMessage());
        }
    }

    private void flatten(String prefix, Object node, String source) {
        if (node instanceof Map<?, ?> m) {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                flatten(prefix.isEmpty() ? String.valueOf(e.getKey()) : prefix + "." + e.getKey(), e.getValue(), source);
            }
        } else if (node instanceof List<?> l && !l.isEmpty() && l.get(0) instanceof Map) {
            for (int i = 0; i < l.size(); i++) {
                flatten(prefix + "." + i, l.get(i), source);
            }
        } else if (node instanceof List<?> l) {
            put(prefix, String.join(",", l.stream().map(String::valueOf).toList()), source);
        } else if (node != null) {
            put(prefix, String.valueOf(node), source);
        }
    }

    // ---- typed access ----

    public boolean has(String key) {
        String v = string(key, null);
        return v != null && !v.isBlank();
    }

    public String string(String key, String def) {
        read.add(key);
        String v = values.get(key);
        String envValue = env.get(envName(key));
        if (envValue != null && !sources.getOrDefault(key, "").startsWith("argument")) {
            v = envValue;
            sources.put(key, "environment " + envName(key));
        }
        return v == null ? def : v.trim();
    }

    public String required(String key, String what) {
        String v = string(key, null);
        if (v == null || v.isEmpty()) {
            throw new ConfigException("config key '" + key + "' is missing: expected " + what
                    + " (set it in the --config file, as --" + key + ", or as " + envName(key) + ")");
        }
        return v;
    }

    public int integer(String key, int def, int min, int max) {
        return (int) number(key, def, min, max, "a whole number");
    }

    public long longValue(String key, long def, long min, long max) {
        return number(key, def, min, max, "a whole number");
    }

    private long number(String key, long def, long min, long max, String what) {
        String v = string(key, null);
        if (v == null) {
            return def;
        }
        long n;
        try {
            n = Long.parseLong(v.replace("_", ""));
        } catch (NumberFormatException e) {
            throw invalid(key, v, what + " between " + min + " and " + max);
        }
        if (n < min || n > max) {
            throw invalid(key, v, what + " between " + min + " and " + max);
        }
        return n;
    }

    public double decimal(String key, double def, double min, double max) {
        String v = string(key, null);
        if (v == null) {
            return def;
        }
        try {
            double d = Double.parseDouble(v);
            if (d >= min && d <= max) {
                return d;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw invalid(key, v, "a number between " + min + " and " + max);
    }

    public boolean bool(String key, boolean def) {
        String v = string(key, null);
        if (v == null) {
            return def;
        }
        return switch (v.toLowerCase()) {
            case "true", "yes", "on", "1" -> true;
            case "false", "no", "off", "0" -> false;
            default -> throw invalid(key, v, "true or false");
        };
    }

    /** A duration: plain milliseconds, or a number with ms, s, m, h or d ({@code 200ms}, {@code 1m}, {@code 30d}). */
    public long durationMs(String key, long defMs, long minMs, long maxMs) {
        String v = string(key, null);
        if (v == null) {
            return defMs;
        }
        String expected = "a duration such as 500ms, 10s, 1m, 2h or 30d between " + minMs + "ms and " + maxMs + "ms";
        var m = java.util.regex.Pattern.compile("(\\d+)\\s*(ms|s|m|h|d)?").matcher(v.toLowerCase());
        if (!m.matches()) {
            throw invalid(key, v, expected);
        }
        long n = Long.parseLong(m.group(1));
        String unit = m.group(2) == null ? "ms" : m.group(2);
        long ms = switch (unit) {
            case "s" -> n * 1000;
            case "m" -> n * 60_000;
            case "h" -> n * 3_600_000;
            case "d" -> n * 86_400_000;
            default -> n;
        };
        if (ms < minMs || ms > maxMs) {
            throw invalid(key, v, expected);
        }
        return ms;
    }

    public List<String> list(String key) {
        String v = string(key, null);
        List<String> out = new ArrayList<>();
        if (v != null) {
            for (String s : v.split(",")) {
                if (!s.isBlank()) {
                    out.add(s.trim());
                }
            }
        }
        return out;
    }

    /** Keys below {@code prefix.} (without the prefix), marking them read. */
    public Map<String, String> subtree(String prefix) {
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : values.entrySet()) {
            if (e.getKey().startsWith(prefix + ".")) {
                read.add(e.getKey());
                out.put(e.getKey().substring(prefix.length() + 1), e.getValue());
            }
        }
        return out;
    }

    public <T> T parsed(String key, T def, String expected, Function<String, T> parser) {
        String v = string(key, null);
        if (v == null) {
            return def;
        }
        try {
            return parser.apply(v);
        } catch (RuntimeException e) {
            throw invalid(key, v, expected + (e.getMessage() == null ? "" : " (" + e.getMessage() + ")"));
        }
    }

    public ConfigException invalid(String key, String value, String expected) {
        String src = sources.getOrDefault(key, "default");
        return new ConfigException("config key '" + key + "' (from " + src + ") has value '" + value + "': expected " + expected);
    }

    /** Fails on any key that no reader asked for: a misspelt key must not be silently ignored. */
    public void rejectUnread() {
        Set<String> unknown = new TreeSet<>();
        outer:
        for (String k : values.keySet()) {
            if (read.contains(k)) {
                continue;
            }
            for (String p : openPrefixes) {
                if (k.startsWith(p)) {
                    continue outer;
                }
            }
            unknown.add(k);
        }
        if (!unknown.isEmpty()) {
            String k = unknown.iterator().next();
            String hint = closest(k, read);
            throw new ConfigException("config key '" + k + "' (from " + sources.get(k) + ") is not a Sluice setting"
                    + (hint == null ? "" : ": did you mean '" + hint + "'?") + (unknown.size() > 1 ? " (also unknown: " + unknown + ")" : ""));
        }
    }

    private static String closest(String key, Set<String> candidates) {
        String best = null;
        int bestD = Integer.MAX_VALUE;
        for (String c : candidates) {
            int d = distance(key, c);
            if (d < bestD) {
                bestD = d;
                best = c;
            }
        }
        return bestD <= Math.max(2, key.length() / 4) ? best : null;
    }

    private static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }
}
