//! A fuzz input read as a script: one octet per operation, then its arguments.
//! Past the end, arguments read as zero.

pub struct Script<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Script<'a> {
    pub fn new(data: &'a [u8]) -> Script<'a> {
        Script { data, pos: 0 }
    }

    /// The next octet, or `None` at the end.
    pub fn byte(&mut self) -> Option<u8> {
        let b = self.data.get(self.pos).copied();
        self.pos += 1;
        b
    }

    /// The next octet, 0 past the end.
    pub fn arg(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }

    /// Up to `n` octets.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos = end;
        &self.data[start..end]
    }
}
