package io.sluice.jobs.common;

/**
 * The longest ids and campaign messages the jobs take; a longer one is a {@code validate} dead letter. A user id hundreds
 * of KB long fits the 1 MiB input topics, but the push record that carries it three times (key, value, {@code ce_subject})
 * would not fit the producer's {@code max.request.size}: the exactly-once push sink would fail, restore, replay the same
 * push and fail again, for ever.
 */
public final class FieldLimits {
    /** {@code app_id}, {@code user_id}, event names, campaign ids; Postgres' index entries take about 2,700 bytes anyway. */
    public static final int MAX_ID_CHARS = 1_000;
    /** A campaign's {@code message}; push services take a few KB. */
    public static final int MAX_MESSAGE_CHARS = 65_536;

    private FieldLimits() {
    }

    /** Why {@code value} of {@code field} is too long, or null. */
    public static String tooLong(String field, String value, int max) {
        return value != null && value.length() > max ? field + " is " + value.length() + " characters long, more than the " + max + " the job takes" : null;
    }
}
