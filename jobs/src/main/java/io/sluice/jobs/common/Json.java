package io.sluice.jobs.common;

import java.util.Collection;
import java.util.Map;

/** Minimal JSON text: string maps and string arrays (Postgres {@code jsonb} parameters), and string literals. */
public final class Json {
    private Json() {
    }

    public static String object(Map<String, String> map) {
        StringBuilder b = new StringBuilder(16 + map.size() * 24).append('{');
        boolean first = true;
        for (Map.Entry<String, String> e : map.entrySet()) {
            if (!first) {
                b.append(',');
            }
            first = false;
            string(b, e.getKey()).append(':');
            if (e.getValue() == null) {
                b.append("null");
            } else {
                string(b, e.getValue());
            }
        }
        return b.append('}').toString();
    }

    public static String array(Collection<String> values) {
        StringBuilder b = new StringBuilder().append('[');
        boolean first = true;
        for (String v : values) {
            if (!first) {
                b.append(',');
            }
            first = false;
            string(b, v);
        }
        return b.append(']').toString();
    }

    /** A JSON string literal; {@code null} for null. */
    public static String string(String s) {
        return s == null ? "null" : string(new StringBuilder(s.length() + 2), s).toString();
    }

    /** Appends {@code s} to {@code b} as a JSON string literal. */
    public static StringBuilder string(StringBuilder b, String s) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"');
    }
}
