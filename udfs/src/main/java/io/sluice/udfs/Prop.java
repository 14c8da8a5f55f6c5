package io.sluice.udfs;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

import java.util.Map;

/**
 * {@code PROP(properties, key)}: one property's value, from a {@code MAP<STRING, STRING>} (an event's
 * {@code properties}) or from the JSON text of a flat object of strings (a {@code subscriptions.properties}
 * column read through JDBC). Null if absent, or if the JSON is not a flat object. Null in, null out.
 */
public class Prop extends ScalarFunction {
    public String eval(@DataTypeHint("MAP<STRING, STRING>") Map<String, String> properties, String key) {
        return properties == null || key == null ? null : properties.get(key);
    }

    public String eval(String json, String key) {
        if (json == null || key == null) {
            return null;
        }
        return new FlatJson(json).get(key);
    }

    /** A reader of {@code {"k":"v", ...}} with string values (numbers, booleans and null are given as text). */
    static final class FlatJson {
        private final String s;
        private int i;

        FlatJson(String s) {
            this.s = s;
        }

        String get(String wanted) {
            try {
                skipSpace();
                expect('{');
                skipSpace();
                if (peek() == '}') {
                    return null;
                }
                while (true) {
                    skipSpace();
                    String k = string();
                    skipSpace();
                    expect(':');
                    skipSpace();
                    String v = peek() == '"' ? string() : bare();
                    if (k.equals(wanted)) {
                        return v;
                    }
                    skipSpace();
                    if (peek() == ',') {
                        i++;
                        continue;
                    }
                    expect('}');
                    return null;
                }
            } catch (RuntimeException notFlat) {
                return null;
            }
        }

        private String string() {
            expect('"');
            StringBuilder b = new StringBuilder();
            while (true) {
                char c = s.charAt(i++);
                if (c == '"') {
                    return b.toString();
                }
                if (c != '\\') {
                    b.append(c);
                    continue;
                }
                char e = s.charAt(i++);
                switch (e) {
                    case 'n' -> b.append('\n');
                    case 't' -> b.append('\t');
                    case 'r' -> b.append('\r');
                    case 'b' -> b.append('\b');
                    case 'f' -> b.append('\f');
                    case 'u' -> {
                        b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                    }
                    default -> b.append(e);
                }
            }
        }

        private String bare() {
            int start = i;
            while (i < s.length() && ",} \t\r\n".indexOf(s.charAt(i)) < 0) {
                if (s.charAt(i) == '{' || s.charAt(i) == '[') {
                    throw new IllegalArgumentException("nested value");
                }
                i++;
            }
            String v = s.substring(start, i);
            return v.equals("null") ? null : v;
        }

        private char peek() {
            return s.charAt(i);
        }

        private void expect(char c) {
            if (s.charAt(i++) != c) {
                throw new IllegalArgumentException("expected " + c);
            }
        }

        private void skipSpace() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                i++;
            }
        }
    }
}
