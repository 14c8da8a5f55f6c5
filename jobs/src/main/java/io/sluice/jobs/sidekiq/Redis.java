package io.sluice.jobs.sidekiq;

import io.sluice.core.config.SluiceConfig;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One connection to Redis speaking RESP2: commands pipelined, replies read in order. The bridge needs five commands
 * (AUTH, SELECT, SCRIPT LOAD, EVALSHA, LLEN), so it speaks the protocol itself rather than bringing a client library and
 * its pools into the job jar. An error reply is returned as {@link Error}, not thrown: in a pipeline the caller decides
 * per command. A broken or silent connection throws {@link IOException}; the caller then opens a new one.
 */
final class Redis implements AutoCloseable {
    /** An error reply, e.g. {@code NOSCRIPT No matching script}. */
    record Error(String message) {
    }

    private final Socket socket;
    private final InputStream in;
    private final OutputStream out;

    /** Connects, authenticates when the configuration has a password, and selects the database. */
    Redis(SluiceConfig.Sidekiq config) throws IOException {
        this(config, s -> { });
    }

    /** As {@link #Redis(SluiceConfig.Sidekiq)}, handing the socket to {@code created} before it connects, so another thread can close it. */
    Redis(SluiceConfig.Sidekiq config, java.util.function.Consumer<Socket> created) throws IOException {
        socket = new Socket();
        created.accept(socket);
        try {
            socket.connect(new InetSocketAddress(config.redisHost(), config.redisPort()), (int) config.connectTimeoutMs());
            socket.setSoTimeout((int) config.socketTimeoutMs());
            socket.setTcpNoDelay(true);
            socket.setKeepAlive(true);
            in = new BufferedInputStream(socket.getInputStream(), 1 << 16);
            out = new BufferedOutputStream(socket.getOutputStream(), 1 << 16);
            if (config.redisPassword() != null) {
                expectOk(call("AUTH", config.redisPassword()), "AUTH");
            }
            if (config.redisDatabase() != 0) {
                expectOk(call("SELECT", String.valueOf(config.redisDatabase())), "SELECT " + config.redisDatabase());
            }
        } catch (IOException | RuntimeException e) {
            socket.close();
            throw e;
        }
    }

    private static void expectOk(Object reply, String what) throws IOException {
        if (reply instanceof Error e) {
            throw new IOException("Redis refused " + what + ": " + e.message());
        }
    }

    /** One command and its reply. */
    Object call(String... args) throws IOException {
        return pipeline(List.<String[]>of(args)).get(0);
    }

    /** Sends every command, then reads one reply per command, in order. */
    List<Object> pipeline(List<String[]> commands) throws IOException {
        for (String[] c : commands) {
            write(c);
        }
        out.flush();
        List<Object> replies = new ArrayList<>(commands.size());
        for (int i = 0; i < commands.size(); i++) {
            replies.add(read());
        }
        return replies;
    }

    private void write(String[] args) throws IOException {
        out.write('*');
        out.write(ascii(args.length));
        out.write('\r');
        out.write('\n');
        for (String a : args) {
            byte[] b = a.getBytes(StandardCharsets.UTF_8);
            out.write('$');
            out.write(ascii(b.length));
            out.write('\r');
            out.write('\n');
            out.write(b);
            out.write('\r');
            out.write('\n');
        }
    }

    private static byte[] ascii(long n) {
        return Long.toString(n).getBytes(StandardCharsets.US_ASCII);
    }

    /** A reply: String (simple or bulk), Long, List, null, or {@link Error}. */
    private Object read() throws IOException {
        int type = in.read();
        if (type < 0) {
            throw new EOFException("Redis closed the connection");
        }
        String line = line();
        switch (type) {
            case '+':
                return line;
            case '-':
                return new Error(line);
            case ':':
                return Long.parseLong(line);
            case '$': {
                int n = Integer.parseInt(line);
                if (n < 0) {
                    return null;
                }
                byte[] b = in.readNBytes(n);
                if (b.length < n || in.read() != '\r' || in.read() != '\n') {
                    throw new EOFException("Redis closed the connection inside a reply");
                }
                return new String(b, StandardCharsets.UTF_8);
            }
            case '*': {
                int n = Integer.parseInt(line);
                if (n < 0) {
                    return null;
                }
                List<Object> items = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    items.add(read());
                }
                return items;
            }
            default:
                throw new IOException("not a RESP reply from Redis (type byte " + type + ")");
        }
    }

    private String line() throws IOException {
        StringBuilder b = new StringBuilder();
        for (int c; (c = in.read()) != '\r'; ) {
            if (c < 0) {
                throw new EOFException("Redis closed the connection inside a reply");
            }
            b.append((char) c);
        }
        if (in.read() != '\n') {
            throw new IOException("a RESP line from Redis did not end in CRLF");
        }
        return b.toString();
    }

    @Override
    public void close() {
        try {
            socket.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }
}
