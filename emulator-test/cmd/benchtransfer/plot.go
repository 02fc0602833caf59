package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// series is one line of the plot: transfer throughput against parts in flight for one (size, cap, sink).
type series struct {
	label string
	col   color.RGBA
	dash  bool
	pts   map[int]float64 // in flight -> MB/s
	flat  float64         // > 0: a horizontal reference line (ceiling, naive)
}

var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x7f, 0x0e, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0x17, 0xbe, 0xcf, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
}

func capName(cp int64) string {
	if cp == 0 {
		return "no cap"
	}
	return fmt.Sprintf("cap %d MB/s", cp/1e6)
}

// writePlot draws transfer MB/s against parts in flight: one solid line per (size, cap, sink), and dashed
// reference lines for the ceiling (no cap) and the naive copy (fastsink) of the largest size.
func writePlot(path string, rep Report) error {
	var ss []*series
	var xs []int
	key := map[string]*series{}
	for _, r := range rep.Rows {
		if r.Variant != "transfer" || r.Error != "" {
			continue
		}
		k := fmt.Sprintf("%s, %s, %s", r.SizeLabel, capName(r.CapBps), r.Sink)
		s := key[k]
		if s == nil {
			s = &series{label: "transfer " + k, pts: map[int]float64{}}
			key[k] = s
			ss = append(ss, s)
		}
		s.pts[r.InFlight] = r.MBps
		if !slices.Contains(xs, r.InFlight) {
			xs = append(xs, r.InFlight)
		}
	}
	var largest int64
	for _, r := range rep.Rows {
		largest = max(largest, r.Size)
	}
	for _, r := range rep.Rows {
		if r.Size != largest || r.Error != "" {
			continue
		}
		if r.Variant == "ceiling" && r.CapBps == 0 {
			ss = append(ss, &series{label: fmt.Sprintf("ceiling (GET to io.Discard), %s, no cap", r.SizeLabel), flat: r.MBps, dash: true})
		}
		if r.Variant == "naive" && r.Sink == "fastsink" {
			ss = append(ss, &series{label: fmt.Sprintf("naive (1 GET, 1 Writer), %s, %s, fastsink", r.SizeLabel, capName(r.CapBps)), flat: r.MBps, dash: true})
		}
	}
	for i, s := range ss {
		s.col = palette[i%len(palette)]
	}
	slices.Sort(xs)
	if len(xs) == 0 {
		return fmt.Errorf("no transfer rows to plot")
	}
	var ymax float64
	for _, s := range ss {
		ymax = max(ymax, s.flat)
		for _, v := range s.pts {
			ymax = max(ymax, v)
		}
	}
	step := niceStep(ymax / 6)
	ymax = math.Ceil(ymax/step) * step

	const W, H = 1140, 620
	const left, right, top, bottom = 80, 470, 50, 70 // margins; the legend is on the right
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	black := color.RGBA{0, 0, 0, 0xff}
	grid := color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	px0, px1, py0, py1 := left, W-right, H-bottom, top
	xAt := func(i int) int {
		if len(xs) == 1 {
			return (px0 + px1) / 2
		}
		return px0 + 20 + i*(px1-px0-40)/(len(xs)-1)
	}
	yAt := func(v float64) int { return py0 - int(v/ymax*float64(py0-py1)) }

	for v := 0.0; v <= ymax+step/2; v += step {
		y := yAt(v)
		line(img, px0, y, px1, y, grid, 1, false)
		label(img, px0-8-textWidth(fmt.Sprintf("%.0f", v)), y+4, fmt.Sprintf("%.0f", v), black)
	}
	for i, x := range xs {
		line(img, xAt(i), py0, xAt(i), py0+5, black, 1, false)
		label(img, xAt(i)-textWidth(fmt.Sprint(x))/2, py0+20, fmt.Sprint(x), black)
	}
	line(img, px0, py0, px1, py0, black, 1, false)
	line(img, px0, py0, px0, py1, black, 1, false)
	label(img, (px0+px1)/2-textWidth("parts in flight")/2, H-25, "parts in flight", black)
	label(img, 10, top-20, "MB/s (10^6 bytes/s)", black)
	title := fmt.Sprintf("benchtransfer: archive from the fake's signed URL into a sink (%d CPUs, load %s)", rep.CPUs, rep.LoadStart)
	label(img, 10, 18, title, black)

	for _, s := range ss {
		if s.flat > 0 {
			line(img, px0, yAt(s.flat), px1, yAt(s.flat), s.col, 2, true)
			continue
		}
		prev := -1
		for i, x := range xs {
			v, ok := s.pts[x]
			if !ok {
				continue
			}
			cx, cy := xAt(i), yAt(v)
			fillRect(img, cx-3, cy-3, cx+3, cy+3, s.col)
			if prev >= 0 {
				line(img, xAt(prev), yAt(s.pts[xs[prev]]), cx, cy, s.col, 2, false)
			}
			prev = i
		}
	}
	// Legend.
	lx, ly := W-right+20, top+10
	for _, s := range ss {
		line(img, lx, ly-4, lx+30, ly-4, s.col, 2, s.dash)
		label(img, lx+38, ly, s.label, black)
		ly += 20
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func label(img *image.RGBA, x, y int, s string, c color.Color) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func textWidth(s string) int { return font.MeasureString(basicfont.Face7x13, s).Ceil() }

func fillRect(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	draw.Draw(img, image.Rect(x0, y0, x1+1, y1+1), image.NewUniform(c), image.Point{}, draw.Src)
}

// line draws a line of width w (Bresenham, squares at each point), dashed if asked.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, w int, dashed bool) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for n := 0; ; n++ {
		if !dashed || (n/8)%2 == 0 {
			for i := 0; i < w; i++ {
				for j := 0; j < w; j++ {
					img.SetRGBA(x0+i-w/2, y0+j-w/2, c)
				}
			}
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
