package io.sluice.testkit;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.Path2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * PNG plots for the tools' reports (the chaos run's timeline; the benchmarks' comparisons), drawn with the JDK's
 * Java2D in headless mode: no plotting library, no display.
 */
public final class Plot {
    private static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0xff7f0e),
            new Color(0x9467bd), new Color(0x8c564b)};
    private static final int WIDTH = 1400;
    private static final int PANEL_HEIGHT = 240;
    private static final int LEFT = 90;
    private static final int RIGHT = 30;
    private static final int TOP = 90;
    private static final int GAP = 50;

    private Plot() {
    }

    /** One line: {@code y[i]} at {@code x[i]}; NaN leaves a gap. */
    public record Series(String name, double[] x, double[] y) {
    }

    /** One chart of the stack, with its own y axis. */
    public record Panel(String title, String unit, List<Series> series) {
    }

    /** A vertical line across every panel at {@code x}, labelled. */
    public record Marker(double x, String label) {
    }

    /** Panels stacked over one shared x axis ({@code xLabel}), {@code markers} drawn across all of them, written to {@code png}. */
    public static void timeline(String title, String xLabel, List<Panel> panels, List<Marker> markers, Path png) throws IOException {
        draw(TOP + panels.size() * (PANEL_HEIGHT + GAP) + 30, png, g -> {
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
            g.drawString(title, LEFT, 20);
            double xMax = 1;
            for (Panel p : panels) {
                for (Series s : p.series()) {
                    for (double x : s.x()) {
                        xMax = Math.max(xMax, x);
                    }
                }
            }
            for (Marker m : markers) {
                xMax = Math.max(xMax, m.x());
            }
            int plotWidth = WIDTH - LEFT - RIGHT;
            for (int i = 0; i < panels.size(); i++) {
                int top = TOP + i * (PANEL_HEIGHT + GAP);
                drawPanel(g, panels.get(i), top, plotWidth, xMax, i == panels.size() - 1 ? xLabel : null);
                drawMarkers(g, markers, top, plotWidth, xMax, i == 0);
            }
        });
    }

    /** One bar of a comparison: {@code value} in the chart's unit; {@code sluice} bars are drawn in the first colour, the others in grey. */
    public record Bar(String name, double value, boolean sluice) {
    }

    /** Horizontal bars, one per row, labelled with their name and value, written to {@code png}: a benchmark's comparison. */
    public static void bars(String title, String unit, List<Bar> bars, Path png) throws IOException {
        int row = 34;
        draw(TOP + bars.size() * row + 50, png, g -> {
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
            g.drawString(title, 20, 24);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
            int labelWidth = 30 + bars.stream().mapToInt(b -> g.getFontMetrics().stringWidth(b.name())).max().orElse(0);
            g.drawString(unit, labelWidth, TOP - 16);
            double max = niceCeiling(bars.stream().mapToDouble(Bar::value).filter(v -> !Double.isNaN(v)).max().orElse(1));
            int plotWidth = WIDTH - labelWidth - RIGHT - 90;
            for (int i = 0; i < bars.size(); i++) {
                Bar b = bars.get(i);
                int y = TOP + i * row;
                g.setColor(Color.BLACK);
                g.drawString(b.name(), labelWidth - 10 - g.getFontMetrics().stringWidth(b.name()), y + row / 2 + 5);
                double v = Double.isNaN(b.value()) ? 0 : b.value();
                int w = (int) Math.round(v / max * plotWidth);
                g.setColor(b.sluice() ? PALETTE[0] : new Color(0x999999));
                g.fillRect(labelWidth, y + 6, w, row - 12);
                g.setColor(Color.BLACK);
                g.drawString(Double.isNaN(b.value()) ? "not measured" : String.format(Locale.ROOT, "%,.0f", b.value()), labelWidth + w + 6, y + row / 2 + 5);
            }
            g.drawLine(labelWidth, TOP, labelWidth, TOP + bars.size() * row);
        });
    }

    /** A white, antialiased image {@link #WIDTH} wide, drawn by {@code painter} in black to start with, written to {@code png}. */
    private static void draw(int height, Path png, java.util.function.Consumer<Graphics2D> painter) throws IOException {
        System.setProperty("java.awt.headless", "true");
        BufferedImage img = new BufferedImage(WIDTH, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, WIDTH, height);
            g.setColor(Color.BLACK);
            painter.accept(g);
        } finally {
            g.dispose();
        }
        Files.createDirectories(png.toAbsolutePath().getParent());
        ImageIO.write(img, "png", png.toFile());
    }

    private static void drawPanel(Graphics2D g, Panel p, int top, int plotWidth, double xMax, String xLabel) {
        double yMax = 0;
        for (Series s : p.series()) {
            for (double y : s.y()) {
                if (!Double.isNaN(y)) {
                    yMax = Math.max(yMax, y);
                }
            }
        }
        yMax = niceCeiling(yMax);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        g.setColor(new Color(0xdddddd));
        for (int t = 0; t <= 4; t++) {
            int y = top + PANEL_HEIGHT - t * PANEL_HEIGHT / 4;
            g.drawLine(LEFT, y, LEFT + plotWidth, y);
        }
        g.setColor(Color.BLACK);
        g.drawRect(LEFT, top, plotWidth, PANEL_HEIGHT);
        g.drawString(p.title() + " (" + p.unit() + ")", LEFT, top - 8);
        for (int t = 0; t <= 4; t++) {
            String label = format(yMax * t / 4);
            int y = top + PANEL_HEIGHT - t * PANEL_HEIGHT / 4;
            g.drawString(label, LEFT - 8 - g.getFontMetrics().stringWidth(label), y + 4);
        }
        double step = niceCeiling(xMax / 10);
        for (double x = 0; x <= xMax + 1e-9; x += step) {
            int px = LEFT + (int) (x / xMax * plotWidth);
            g.drawLine(px, top + PANEL_HEIGHT, px, top + PANEL_HEIGHT + 4);
            String label = format(x);
            g.drawString(label, px - g.getFontMetrics().stringWidth(label) / 2, top + PANEL_HEIGHT + 18);
        }
        if (xLabel != null) {
            g.drawString(xLabel, LEFT + plotWidth / 2 - g.getFontMetrics().stringWidth(xLabel) / 2, top + PANEL_HEIGHT + 34);
        }
        int legendX = LEFT + plotWidth;
        for (int i = p.series().size() - 1; i >= 0; i--) {
            Series s = p.series().get(i);
            Color c = PALETTE[i % PALETTE.length];
            legendX -= g.getFontMetrics().stringWidth(s.name()) + 30;
            g.setColor(c);
            g.fillRect(legendX, top - 17, 14, 4);
            g.setColor(Color.BLACK);
            g.drawString(s.name(), legendX + 18, top - 12);
            g.setColor(c);
            g.setStroke(new BasicStroke(1.6f));
            Path2D line = new Path2D.Double();
            boolean pen = false;
            for (int k = 0; k < s.x().length; k++) {
                if (Double.isNaN(s.y()[k])) {
                    pen = false;
                    continue;
                }
                double px = LEFT + s.x()[k] / xMax * plotWidth;
                double py = top + PANEL_HEIGHT - (yMax == 0 ? 0 : Math.min(s.y()[k], yMax) / yMax * PANEL_HEIGHT);
                if (pen) {
                    line.lineTo(px, py);
                } else {
                    line.moveTo(px, py);
                    pen = true;
                }
            }
            g.draw(line);
            g.setStroke(new BasicStroke(1f));
        }
        g.setColor(Color.BLACK);
    }

    private static void drawMarkers(Graphics2D g, List<Marker> markers, int top, int plotWidth, double xMax, boolean labels) {
        g.setStroke(new BasicStroke(1f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {4f, 4f}, 0f));
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        for (int i = 0; i < markers.size(); i++) {
            Marker m = markers.get(i);
            int px = LEFT + (int) (m.x() / xMax * plotWidth);
            g.setColor(new Color(0x555555));
            g.drawLine(px, top, px, top + PANEL_HEIGHT);
            if (labels) { // staggered over three rows above the first panel, so neighbours do not overwrite each other
                g.drawString((i + 1) + " " + m.label(), px + 2, 36 + (i % 3) * 12);
            }
        }
        g.setStroke(new BasicStroke(1f));
    }

    private static double niceCeiling(double v) {
        if (v <= 0) {
            return 1;
        }
        double magnitude = Math.pow(10, Math.floor(Math.log10(v)));
        for (double f : new double[] {1, 2, 2.5, 5, 10}) {
            if (f * magnitude >= v) {
                return f * magnitude;
            }
        }
        return 10 * magnitude;
    }

    private static String format(double v) {
        if (v >= 10_000) {
            return String.format(Locale.ROOT, "%,.0f", v);
        }
        return v == Math.rint(v) ? String.format(Locale.ROOT, "%.0f", v) : String.format(Locale.ROOT, "%.1f", v);
    }
}
