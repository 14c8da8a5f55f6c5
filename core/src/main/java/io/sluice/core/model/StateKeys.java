package io.sluice.core.model;

/**
 * Keys of Flink state and {@code keyBy} made of two ids, such as (app, user) or (app, campaign), encoded so that
 * different pairs never meet: {@code first:second}, where a {@code :} or {@code \} inside {@code first} is escaped
 * with {@code \}. The first unescaped {@code :} separates the two, so ({@code acme}, {@code staging:1}) and
 * ({@code acme:staging}, {@code 1}) are {@code acme:staging:1} and {@code acme\:staging:1}. An id without those
 * two characters (every app id in practice) encodes exactly as the plain {@code first:second} of earlier builds,
 * so their savepoints keep their keys. Kafka record keys keep the formats of the data contracts.
 */
public final class StateKeys {
    private StateKeys() {
    }

    public static String of(String first, String second) {
        if (first.indexOf(':') < 0 && first.indexOf('\\') < 0) {
            return first + ":" + second;
        }
        StringBuilder b = new StringBuilder(first.length() + second.length() + 4);
        for (int i = 0; i < first.length(); i++) {
            char c = first.charAt(i);
            if (c == ':' || c == '\\') {
                b.append('\\');
            }
            b.append(c);
        }
        return b.append(':').append(second).toString();
    }
}
