import { GLYPH_ADVANCE, glyphOf } from "./font.js";

/** An RGB colour, 0..255 per channel. */
export type Rgb = readonly [number, number, number];

/** Parses `#rrggbb` into an {@link Rgb}. */
export function parseHex(hex: string): Rgb {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) throw new Error(`raster: not a #rrggbb colour: ${hex}`);
  return [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)];
}

/**
 * A plain RGB pixel buffer with the few primitives a line chart needs: rectangles, thick (and
 * dashed) Bresenham lines stamped with a disk, filled disks and bitmap-font text. Plots are drawn on
 * a supersampled raster and {@link Raster.downsample}d, which anti-aliases lines and markers.
 */
export class Raster {
  /** Row-major RGB, 3 bytes per pixel. */
  readonly data: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = [255, 255, 255],
  ) {
    this.data = new Uint8Array(width * height * 3);
    const [r, g, b] = background;
    if (r === g && g === b) this.data.fill(r);
    else for (let i = 0; i < this.data.length; i += 3) (this.data[i] = r), (this.data[i + 1] = g), (this.data[i + 2] = b);
  }

  /** Sets one pixel; coordinates outside the raster are ignored (clipping). */
  set(x: number, y: number, c: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 3;
    this.data[i] = c[0];
    this.data[i + 1] = c[1];
    this.data[i + 2] = c[2];
  }

  /** The colour at (x, y). */
  get(x: number, y: number): Rgb {
    const i = (y * this.width + x) * 3;
    return [this.data[i]!, this.data[i + 1]!, this.data[i + 2]!];
  }

  /** Fills the rectangle [x, x+w) x [y, y+h) (rounded to whole pixels). */
  fillRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) this.set(xx, yy, c);
  }

  /** Fills a disk of radius r centred on (cx, cy). */
  disk(cx: number, cy: number, r: number, c: Rgb): void {
    const r2 = r * r;
    for (let y = Math.floor(cy - r); y <= Math.ceil(cy + r); y++) {
      for (let x = Math.floor(cx - r); x <= Math.ceil(cx + r); x++) {
        const dx = x + 0.5 - cx;
        const dy = y + 0.5 - cy;
        if (dx * dx + dy * dy <= r2) this.set(x, y, c);
      }
    }
  }

  /**
   * A line from (x0, y0) to (x1, y1) walked with Bresenham's algorithm and stamped with a disk of
   * the given width. With `dash` ([on, off] lengths in pixels) only the "on" stretches are stamped;
   * `phase` is the distance already drawn along a polyline, returned updated so dashes continue
   * across its segments.
   */
  line(x0: number, y0: number, x1: number, y1: number, width: number, c: Rgb, dash?: readonly [number, number], phase = 0): number {
    let x = Math.round(x0);
    let y = Math.round(y0);
    const xe = Math.round(x1);
    const ye = Math.round(y1);
    const dx = Math.abs(xe - x);
    const dy = -Math.abs(ye - y);
    const sx = x < xe ? 1 : -1;
    const sy = y < ye ? 1 : -1;
    let err = dx + dy;
    let dist = phase;
    const r = width / 2;
    for (;;) {
      const on = dash === undefined || dist % (dash[0] + dash[1]) < dash[0];
      if (on) {
        if (r <= 0.5) this.set(x, y, c);
        else this.disk(x + 0.5, y + 0.5, r, c);
      }
      if (x === xe && y === ye) break;
      const e2 = 2 * err;
      let stepX = false;
      let stepY = false;
      if (e2 >= dy) {
        err += dy;
        x += sx;
        stepX = true;
      }
      if (e2 <= dx) {
        err += dx;
        y += sy;
        stepY = true;
      }
      dist += stepX && stepY ? Math.SQRT2 : 1;
    }
    return dist;
  }

  /**
   * Draws `text` with the bitmap font, each font pixel a `scale` x `scale` block, its top-left at
   * (x, y). With `vertical`, the text runs bottom to top (rotated a quarter turn anticlockwise) and
   * (x, y) is its bottom-left. Characters without a glyph come out as boxes.
   */
  text(x: number, y: number, text: string, scale: number, c: Rgb, vertical = false): void {
    let pen = 0;
    for (const ch of text) {
      const g = glyphOf(ch);
      g.forEach((row, gy) =>
        row.forEach((ink, gx) => {
          if (!ink) return;
          const u = (pen + gx) * scale;
          const v = gy * scale;
          if (vertical) this.fillRect(x + v, y - u - scale, scale, scale, c);
          else this.fillRect(x + u, y + v, scale, scale, c);
        }),
      );
      pen += GLYPH_ADVANCE;
    }
  }

  /** A raster `factor` times smaller, each pixel the mean of a factor x factor block (anti-aliasing). */
  downsample(factor: number): Raster {
    const w = Math.floor(this.width / factor);
    const h = Math.floor(this.height / factor);
    const out = new Raster(w, h);
    const n = factor * factor;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let r = 0;
        let g = 0;
        let b = 0;
        for (let v = 0; v < factor; v++) {
          let i = ((y * factor + v) * this.width + x * factor) * 3;
          for (let u = 0; u < factor; u++, i += 3) {
            r += this.data[i]!;
            g += this.data[i + 1]!;
            b += this.data[i + 2]!;
          }
        }
        const o = (y * w + x) * 3;
        out.data[o] = Math.round(r / n);
        out.data[o + 1] = Math.round(g / n);
        out.data[o + 2] = Math.round(b / n);
      }
    }
    return out;
  }
}
