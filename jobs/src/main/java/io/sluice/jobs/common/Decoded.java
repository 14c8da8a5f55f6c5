package io.sluice.jobs.common;

/**
 * What the Kafka source emits: either a decoded {@code value} with its source partition and offset,
 * or a {@code deadLetter}. Keeping both in one stream lets the source stay a single operator.
 */
public final class Decoded<T> {
    public T value;
    public int partition;
    public long offset;
    public DeadLetter deadLetter;
    /** The original bytes, kept until validation so a record rejected later can still be dead-lettered untouched. */
    public byte[] key;
    public byte[] raw;

    public Decoded() {
    }

    public static <T> Decoded<T> of(T value, int partition, long offset, byte[] key, byte[] raw) {
        Decoded<T> d = new Decoded<>();
        d.key = key;
        d.raw = raw;
        d.value = value;
        d.partition = partition;
        d.offset = offset;
        return d;
    }

    public static <T> Decoded<T> dead(DeadLetter deadLetter) {
        Decoded<T> d = new Decoded<>();
        d.deadLetter = deadLetter;
        return d;
    }
}
