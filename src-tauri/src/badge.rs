//! The tray icon with the unread total drawn on it: the app icon and, from one unread message
//! on, a red disc with the count ("99+" shows as "99") in its upper right corner.
//!
//! Pure pixels: RGBA in, RGBA out, so it is tested without a display.

/// The app icon the tray starts from (64×64 RGBA PNG).
const ICON_PNG: &[u8] = include_bytes!("../../icons/64x64.png");

/// 3×5 bitmaps of the digits, one row per `u8`, the three low bits left to right.
const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b010, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

pub struct Rgba {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Rgba {
    fn put(&mut self, x: i64, y: i64, color: [u8; 4]) {
        if x >= 0 && y >= 0 && (x as u32) < self.width && (y as u32) < self.height {
            let i = ((y as u32 * self.width + x as u32) * 4) as usize;
            self.pixels[i..i + 4].copy_from_slice(&color);
        }
    }

    #[cfg(test)]
    fn get(&self, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * self.width + x) * 4) as usize;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2], self.pixels[i + 3]]
    }
}

/// The plain app icon.
pub fn icon() -> Rgba {
    let decoder = png::Decoder::new(std::io::Cursor::new(ICON_PNG));
    let mut reader = decoder.read_info().expect("the bundled icon is a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("small icon")];
    let info = reader.next_frame(&mut pixels).expect("the bundled icon decodes");
    assert_eq!(info.color_type, png::ColorType::Rgba, "icons/64x64.png must be RGBA");
    pixels.truncate(info.buffer_size());
    Rgba { width: info.width, height: info.height, pixels }
}

/// The icon with `unread` drawn on it (nothing drawn for 0).
pub fn with_count(unread: u32) -> Rgba {
    let mut img = icon();
    if unread == 0 {
        return img;
    }
    let text = unread.min(99).to_string();
    let size = img.width as i64;
    let radius = size * 5 / 16;
    let (cx, cy) = (size - radius - 1, radius + 1);
    for y in cy - radius - 1..=cy + radius + 1 {
        for x in cx - radius - 1..=cx + radius + 1 {
            let d2 = (x - cx).pow(2) + (y - cy).pow(2);
            if d2 <= radius * radius {
                img.put(x, y, [220, 38, 38, 255]);
            } else if d2 <= (radius + 1) * (radius + 1) {
                img.put(x, y, [255, 255, 255, 255]);
            }
        }
    }
    let scale = if text.len() == 1 { size / 16 } else { size / 24 }.max(1);
    let glyph_w = 3 * scale;
    let gap = scale;
    let total_w = text.len() as i64 * glyph_w + (text.len() as i64 - 1) * gap;
    let (x0, y0) = (cx - total_w / 2, cy - 5 * scale / 2);
    for (n, ch) in text.bytes().enumerate() {
        let glyph = DIGITS[(ch - b'0') as usize];
        let gx = x0 + n as i64 * (glyph_w + gap);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..3 {
                if bits & (0b100 >> col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            img.put(gx + col * scale + dx, y0 + row as i64 * scale + dy, [255, 255, 255, 255]);
                        }
                    }
                }
            }
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red_pixels(img: &Rgba) -> usize {
        (0..img.height)
            .flat_map(|y| (0..img.width).map(move |x| (x, y)))
            .filter(|&(x, y)| img.get(x, y) == [220, 38, 38, 255])
            .count()
    }

    #[test]
    fn zero_is_the_plain_icon_and_a_count_draws_a_badge() {
        let plain = icon();
        assert_eq!((plain.width, plain.height), (64, 64));
        assert_eq!(with_count(0).pixels, plain.pixels);
        let one = with_count(1);
        assert!(red_pixels(&one) > 200, "a red disc is drawn");
        assert_ne!(with_count(7).pixels, with_count(8).pixels, "the digits differ");
        assert_eq!(with_count(150).pixels, with_count(99).pixels, "capped at 99");
    }
}
