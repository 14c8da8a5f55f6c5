package io.sluice.testkit.generator;

import java.util.SplittableRandom;

/**
 * Zipf-distributed ranks 1..n with exponent {@code s} in O(1) memory, by rejection-inversion
 * (W. Hörmann and G. Derflinger, "Rejection-inversion to generate variates from monotone discrete
 * distributions", 1996). Exponent 0 is uniform. Rank 1 is the most frequent.
 */
final class Zipf {
    private final long n;
    private final double exponent;
    private final double hIntegralX1;
    private final double hIntegralN;
    private final double s;

    Zipf(long n, double exponent) {
        if (n < 1) {
            throw new IllegalArgumentException("n must be >= 1, got " + n);
        }
        this.n = n;
        this.exponent = exponent;
        this.hIntegralX1 = hIntegral(1.5) - 1d;
        this.hIntegralN = hIntegral(n + 0.5);
        this.s = 2d - hIntegralInverse(hIntegral(2.5) - h(2));
    }

    long sample(SplittableRandom random) {
        if (exponent == 0 || n == 1) {
            return 1 + random.nextLong(n);
        }
        while (true) {
            double u = hIntegralN + random.nextDouble() * (hIntegralX1 - hIntegralN);
            double x = hIntegralInverse(u);
            long k = (long) (x + 0.5);
            if (k < 1) {
                k = 1;
            } else if (k > n) {
                k = n;
            }
            if (k - x <= s || u >= hIntegral(k + 0.5) - h(k)) {
                return k;
            }
        }
    }

    private double hIntegral(double x) {
        double logX = Math.log(x);
        return helper2((1d - exponent) * logX) * logX;
    }

    private double h(double x) {
        return Math.exp(-exponent * Math.log(x));
    }

    private double hIntegralInverse(double x) {
        double t = x * (1d - exponent);
        if (t < -1d) {
            t = -1d;
        }
        return Math.exp(helper1(t) * x);
    }

    private static double helper1(double x) {
        return Math.abs(x) > 1e-8 ? Math.log1p(x) / x : 1 - x * (0.5 - x * (1d / 3 - 0.25 * x));
    }

    private static double helper2(double x) {
        return Math.abs(x) > 1e-8 ? Math.expm1(x) / x : 1 + x * 0.5 * (1 + x / 3 * (1 + 0.25 * x));
    }
}
