//! Colours shared by the PNG plots and the HTML pages, so a fault kind or an outcome looks the
//! same everywhere. Colour-blind-safe-ish Tableau 10 hues; outcome colours never reuse a fault's.

use checkers::history::Outcome;

/// An RGB colour.
pub type Rgb = (u8, u8, u8);

/// Colour of successful operations.
pub const OK: Rgb = (0x4e, 0x79, 0xa7);
/// Colour of failed operations.
pub const FAIL: Rgb = (0xe1, 0x57, 0x59);
/// Colour of indeterminate operations.
pub const INFO: Rgb = (0xf2, 0x8e, 0x2b);

/// Colours for operation names (`read`, `write`, ...), in order of first appearance.
pub const F_PALETTE: [Rgb; 8] = [
    (0x4e, 0x79, 0xa7),
    (0x59, 0xa1, 0x4f),
    (0xb0, 0x7a, 0xa1),
    (0xf2, 0x8e, 0x2b),
    (0x76, 0xb7, 0xb2),
    (0x9c, 0x75, 0x5f),
    (0xed, 0xc9, 0x48),
    (0xff, 0x9d, 0xa7),
];

/// The colour of an outcome.
pub fn outcome(o: Outcome) -> Rgb {
    match o {
        Outcome::Ok => OK,
        Outcome::Fail => FAIL,
        Outcome::Info => INFO,
    }
}

/// Outcomes in drawing order (the rare, interesting ones last, on top).
pub const OUTCOMES: [Outcome; 3] = [Outcome::Ok, Outcome::Fail, Outcome::Info];

/// The colour of an operation name: fixed for the names faultline and the importers use, so a
/// read is the same colour in every run; other names by their position.
pub fn f_colour(f: &str, i: usize) -> Rgb {
    match f {
        "read" | "get" | "r" => F_PALETTE[0],
        "write" | "put" | "w" => F_PALETTE[1],
        "cas" => F_PALETTE[2],
        "append" => F_PALETTE[3],
        _ => F_PALETTE[4 + i % (F_PALETTE.len() - 4)],
    }
}

/// The colour every fault kind shares in the plots' background shading: one colour, so
/// overlapping faults never blend into colours the legend does not show. The kinds get their
/// own colours in the fault lanes, where they never overlap.
pub const ANY_FAULT: Rgb = (0x9a, 0x9a, 0x9a);

/// The shading colour of a fault kind: fixed for the kinds faultline injects, hashed otherwise.
pub fn fault(kind: &str) -> Rgb {
    let k = kind.to_ascii_lowercase();
    if k.contains("partition") || k.contains("isolat") {
        (0x8e, 0x6b, 0xbf) // violet
    } else if k.contains("kill") || k.contains("crash") || k.contains("restart") {
        (0xc0, 0x39, 0x2b) // dark red
    } else if k.contains("pause") || k.contains("stop") {
        (0x2a, 0x9d, 0x8f) // teal
    } else if k.contains("clock") || k.contains("time") || k.contains("strobe") {
        (0xe9, 0xb4, 0x0b) // amber
    } else if k.contains("delay") || k.contains("loss") || k.contains("packet") {
        (0xd6, 0x5d, 0xb1) // magenta
    } else {
        let h = k
            .bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
        [(0x7f, 0x7f, 0x7f), (0x5a, 0x8f, 0x29), (0x3b, 0x6e, 0xa5)][h as usize % 3]
    }
}

/// `#rrggbb` for CSS.
pub fn hex(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}
