package io.sluice.core.avro;

import org.apache.flink.avro.shaded.org.apache.avro.io.BinaryDecoder;
import org.apache.flink.avro.shaded.org.apache.avro.io.Decoder;
import org.apache.flink.avro.shaded.org.apache.avro.util.Utf8;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Avro binary decoding whose allocations are bounded by the record's own size. Avro's decoder allocates
 * a string, bytes or a collection of the length the record claims before it reads the contents, so a
 * record of a few bytes claiming a gigabyte could exhaust the heap before decoding fails. Here a claimed
 * length or item count larger than the bytes left is an {@link EOFException} (the record is a dead
 * letter), found before anything is allocated. Every string, bytes value and collection item of Sluice's
 * schemas takes at least one byte, so no well-formed record is refused. Reads a byte array only.
 */
final class BoundedDecoder extends Decoder {
    private final BinaryDecoder in;
    private final int size;

    /** {@code size}: the bytes of the Avro body, for the messages. */
    BoundedDecoder(BinaryDecoder in, int size) {
        this.in = in;
        this.size = size;
    }

    private long left() throws IOException {
        return in.inputStream().available();
    }

    private int bounded(long claimed, String what) throws IOException {
        long left = left();
        if (claimed < 0 || claimed > left) {
            throw new EOFException(what + " claims " + claimed + " but the record has " + left + " bytes left (of " + size + ")");
        }
        return (int) claimed;
    }

    @Override
    public void readNull() throws IOException {
        in.readNull();
    }

    @Override
    public boolean readBoolean() throws IOException {
        return in.readBoolean();
    }

    @Override
    public int readInt() throws IOException {
        return in.readInt();
    }

    @Override
    public long readLong() throws IOException {
        return in.readLong();
    }

    @Override
    public float readFloat() throws IOException {
        return in.readFloat();
    }

    @Override
    public double readDouble() throws IOException {
        return in.readDouble();
    }

    @Override
    public Utf8 readString(Utf8 old) throws IOException {
        int n = bounded(in.readLong(), "a string");
        Utf8 s = old != null ? old : new Utf8();
        s.setByteLength(n);
        in.readFixed(s.getBytes(), 0, n);
        return s;
    }

    @Override
    public String readString() throws IOException {
        return readString(null).toString();
    }

    @Override
    public void skipString() throws IOException {
        in.skipFixed(bounded(in.readLong(), "a string"));
    }

    @Override
    public ByteBuffer readBytes(ByteBuffer old) throws IOException {
        int n = bounded(in.readLong(), "a bytes value");
        byte[] b = new byte[n];
        in.readFixed(b, 0, n);
        return ByteBuffer.wrap(b);
    }

    @Override
    public void skipBytes() throws IOException {
        in.skipFixed(bounded(in.readLong(), "a bytes value"));
    }

    @Override
    public void readFixed(byte[] b, int start, int length) throws IOException {
        in.readFixed(b, start, length);
    }

    @Override
    public void skipFixed(int length) throws IOException {
        in.skipFixed(length);
    }

    @Override
    public int readEnum() throws IOException {
        return in.readEnum();
    }

    /** A block count (negative: followed by the block's size in bytes, as Avro writes for skipping). */
    private long block() throws IOException {
        long n = in.readLong();
        if (n < 0) {
            in.readLong(); // the block's byte size
            n = -n;
        }
        return bounded(n, "a collection block of items");
    }

    @Override
    public long readArrayStart() throws IOException {
        return block();
    }

    @Override
    public long arrayNext() throws IOException {
        return block();
    }

    @Override
    public long skipArray() throws IOException {
        return in.skipArray();
    }

    @Override
    public long readMapStart() throws IOException {
        return block();
    }

    @Override
    public long mapNext() throws IOException {
        return block();
    }

    @Override
    public long skipMap() throws IOException {
        return in.skipMap();
    }

    @Override
    public int readIndex() throws IOException {
        return in.readIndex();
    }
}
