package io.sluice.sql;

import io.sluice.core.config.SluiceConfig;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Sluice's SQL scripts (the {@code .sql} files of {@code sql/}) with their placeholders filled from
 * Sluice's configuration, so no endpoint or credential is ever written into a script.
 *
 * <p>In: a script, a {@link SluiceConfig} and parameters. Out: SQL Flink runs as is. The template rules:
 * <ul>
 *   <li>{@code ${key}} is a value from the configuration: {@code kafka.bootstrap}, {@code registry.url},
 *   {@code kafka.topics.<name>}, {@code routing.bucket-map} (the full routing spec, {@code <hash>@<ranges>}), {@code shards.count},
 *   {@code sql.scan-startup-mode} (default {@code earliest-offset}), {@code sql.scan-bounded-mode}
 *   (default {@code unbounded}), or a parameter given with {@code --set key=value}. {@code ${key:-default}}
 *   has a default. Values are escaped for SQL string literals; outside quotes only a plain number or name
 *   is accepted, so a parameter can never add SQL.</li>
 *   <li>Lines between {@code -- for each shard} and {@code -- end for each shard} are repeated for every
 *   shard with {@code ${shard}} (its index), {@code ${shard.url}} and {@code ${shard.user}};
 *   {@code -- for each shard, joined by UNION ALL} puts {@code UNION ALL} between the copies.</li>
 *   <li>{@code ${kafka.properties-options}} and {@code ${shard.credentials-options}} expand to whole
 *   {@code , 'key' = 'value'} options: the {@code kafka.properties.*} client settings (e.g. SASL) and the
 *   shard's user and password (from configuration or the environment).</li>
 * </ul>
 */
public final class SqlScripts {
    /** The scripts that set up a session: settings, functions, topic tables, shard tables and views, in this order. */
    public static final List<String> INIT = List.of("tables/session.sql", "tables/functions.sql", "tables/topics.sql", "tables/shards.sql");

    private static final Pattern PLACEHOLDER = Pattern.compile("\\$\\{([A-Za-z0-9_.-]+)(?::-([^}]*))?}");
    private static final Pattern FOR_EACH_SHARD = Pattern.compile("--\\s*for each shard(?:,\\s*joined by\\s+(.+))?", Pattern.CASE_INSENSITIVE);
    private static final Pattern END_FOR_EACH = Pattern.compile("--\\s*end for each shard", Pattern.CASE_INSENSITIVE);
    private static final Pattern PLAIN = Pattern.compile("[A-Za-z0-9_.:-]+");

    private final Path dir;
    private final SluiceConfig config;
    private final Map<String, String> values = new HashMap<>();
    private final Map<String, String> fragments = new HashMap<>();

    /**
     * @param dir the {@code sql/} directory
     * @param params {@code sql.*} settings and query parameters ({@code app_id}, ...), overriding the defaults
     */
    public SqlScripts(Path dir, SluiceConfig config, Map<String, String> params) {
        this.dir = dir;
        this.config = config;
        SluiceConfig.Kafka k = config.kafka();
        values.put("kafka.bootstrap", k.bootstrap());
        values.put("registry.url", config.registry().url());
        values.put("kafka.topics.user-events", k.userEventsTopic());
        values.put("kafka.topics.subscription-updates", k.subscriptionUpdatesTopic());
        values.put("kafka.topics.campaigns", k.campaignsTopic());
        values.put("kafka.topics.push-queue", k.pushQueueTopic());
        values.put("kafka.topics.dead-letters", k.deadLettersTopic());
        values.put("routing.bucket-map", config.router().spec()); // <hash>@<ranges>: what SHARD_OF takes
        values.put("routing.buckets", String.valueOf(config.router().buckets()));
        values.put("shards.count", String.valueOf(config.shards().list().size()));
        values.put("sql.scan-startup-mode", "earliest-offset");
        values.put("sql.scan-bounded-mode", "unbounded");
        values.putAll(params);
        StringBuilder kafkaOptions = new StringBuilder();
        k.clientProperties().forEach((key, v) -> kafkaOptions.append(",\n  ").append(option("properties." + key, v)));
        fragments.put("kafka.properties-options", kafkaOptions.toString());
    }

    public Path dir() {
        return dir;
    }

    /** The session setup: every {@link #INIT} script rendered, in order. */
    public String init() {
        StringBuilder b = new StringBuilder();
        for (String f : INIT) {
            b.append("-- ").append(f).append('\n').append(render(f)).append('\n');
        }
        return b.toString();
    }

    /** One script ({@code queries/top-events-last-10-minutes.sql}, relative to {@link #dir()}) rendered. */
    public String render(String relativePath) {
        Path file = dir.resolve(relativePath);
        try {
            return render(relativePath, Files.readString(file));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read SQL script " + file, e);
        }
    }

    /** Every {@code .sql} file of the directory (not under {@code src/} or {@code target/}), as paths relative to it, sorted. */
    public List<String> allScripts() {
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(p -> p.toString().endsWith(".sql"))
                    .map(p -> dir.relativize(p).toString().replace('\\', '/'))
                    .filter(p -> !p.startsWith("src/") && !p.startsWith("target/"))
                    .sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    String render(String name, String text) {
        String[] lines = text.split("\n", -1);
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < lines.length; i++) {
            Matcher start = FOR_EACH_SHARD.matcher(lines[i].trim());
            if (start.matches()) {
                int first = i + 1;
                int end = first;
                while (end < lines.length && !END_FOR_EACH.matcher(lines[end].trim()).matches()) {
                    end++;
                }
                if (end == lines.length) {
                    throw new IllegalArgumentException(name + " line " + (i + 1) + ": '-- for each shard' without '-- end for each shard'");
                }
                String joiner = start.group(1) == null ? "" : start.group(1).trim();
                List<String> copies = new ArrayList<>();
                for (SluiceConfig.Shard shard : config.shards().list()) {
                    StringBuilder copy = new StringBuilder();
                    for (int j = first; j < end; j++) {
                        copy.append(substitute(name, j + 1, lines[j], shard)).append('\n');
                    }
                    copies.add(copy.toString());
                }
                out.append(String.join(joiner.isEmpty() ? "" : joiner + "\n", copies));
                i = end;
                continue;
            }
            out.append(substitute(name, i + 1, lines[i], null));
            if (i < lines.length - 1) {
                out.append('\n');
            }
        }
        return out.toString();
    }

    private String substitute(String name, int line, String text, SluiceConfig.Shard shard) {
        Matcher m = PLACEHOLDER.matcher(text);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String key = m.group(1);
            String replacement;
            if (key.equals("shard") || key.startsWith("shard.")) {
                if (shard == null) {
                    throw new IllegalArgumentException(name + " line " + line + ": ${" + key + "} is only defined between '-- for each shard' and '-- end for each shard'");
                }
                replacement = switch (key) {
                    case "shard" -> String.valueOf(shard.index());
                    case "shard.url" -> literal(shard.jdbcUrl());
                    case "shard.user" -> literal(shard.user());
                    // the JDBC connector takes both or neither; no configured password is an empty one (trust or peer auth)
                    case "shard.credentials-options" -> ",\n  " + option("username", shard.user())
                            + ",\n  " + option("password", shard.password() == null ? "" : shard.password());
                    default -> throw new IllegalArgumentException(name + " line " + line + ": unknown placeholder ${" + key
                            + "}; a shard has ${shard}, ${shard.url}, ${shard.user}, ${shard.credentials-options}");
                };
            } else if (fragments.containsKey(key)) {
                replacement = fragments.get(key);
            } else {
                String v = values.containsKey(key) ? values.get(key) : m.group(2);
                if (v == null) {
                    throw new IllegalArgumentException(name + " line " + line + ": no value for ${" + key + "}; give it with --set " + key + "=VALUE");
                }
                boolean quoted = m.start() > 0 && text.charAt(m.start() - 1) == '\'';
                if (!quoted && !PLAIN.matcher(v).matches()) {
                    throw new IllegalArgumentException(name + " line " + line + ": ${" + key + "} = '" + v
                            + "' is not allowed there: outside quotes only a plain number or name (letters, digits, . _ : -)");
                }
                replacement = literal(v);
            }
            m.appendReplacement(out, Matcher.quoteReplacement(replacement));
        }
        m.appendTail(out);
        return out.toString();
    }

    private static String option(String key, String value) {
        return "'" + literal(key) + "' = '" + literal(value) + "'";
    }

    private static String literal(String v) {
        return v.replace("'", "''");
    }

    /**
     * A script split into statements as the SQL client splits it: at {@code ;} outside quotes, back
     * quotes and {@code --} comments (dropped), keeping {@code EXECUTE STATEMENT SET BEGIN ... END} whole.
     */
    public static List<String> statements(String script) {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        char quote = 0;
        for (int i = 0; i < script.length(); i++) {
            char c = script.charAt(i);
            if (quote != 0) {
                cur.append(c);
                if (c == quote) {
                    quote = 0;
                }
                continue;
            }
            if (c == '-' && i + 1 < script.length() && script.charAt(i + 1) == '-') {
                while (i < script.length() && script.charAt(i) != '\n') {
                    i++;
                }
                cur.append('\n');
                continue;
            }
            if (c == '\'' || c == '`' || c == '"') {
                quote = c;
                cur.append(c);
                continue;
            }
            if (c == ';') {
                String s = cur.toString().trim();
                boolean openStatementSet = s.matches("(?is)(EXECUTE\\s+)?STATEMENT\\s+SET\\s+BEGIN\\b.*") && !s.matches("(?is).*\\bEND");
                if (openStatementSet) {
                    cur.append(';');
                    continue;
                }
                if (!s.isEmpty()) {
                    out.add(s);
                }
                cur.setLength(0);
                continue;
            }
            cur.append(c);
        }
        if (!cur.toString().isBlank()) {
            out.add(cur.toString().trim());
        }
        return out;
    }
}
