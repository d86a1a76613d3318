//! What a bench run received, message by message: each producer numbers its
//! sends, and a ledger keeps one bit per number, so a run through a failover
//! can say how many messages came twice and which never came.

/// Which of each producer's messages have arrived (for a queue: at any
/// consumer; for a topic: at one consumer, so each has its own).
#[derive(Debug, Default)]
pub struct Ledger {
    /// Per producer, one bit per sequence number.
    seen: Vec<Vec<u64>>,
    /// Messages marked for the first time.
    pub unique: u64,
    /// Messages marked again.
    pub duplicates: u64,
}

impl Ledger {
    /// A ledger for `producers` producers.
    pub fn new(producers: usize) -> Ledger {
        Ledger {
            seen: vec![Vec::new(); producers],
            ..Ledger::default()
        }
    }

    /// Marks message `n` of `producer` as received: `true` the first time.
    /// The caller checks first that the producer exists and has sent `n`,
    /// so the bits grow only as far as what was sent.
    pub fn mark(&mut self, producer: usize, n: u64) -> bool {
        let bits = &mut self.seen[producer];
        let (word, bit) = ((n / 64) as usize, n % 64);
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        let new = bits[word] & (1 << bit) == 0;
        bits[word] |= 1 << bit;
        if new {
            self.unique += 1;
        } else {
            self.duplicates += 1;
        }
        new
    }

    /// Whether message `n` of `producer` has arrived.
    pub fn has(&self, producer: usize, n: u64) -> bool {
        self.seen
            .get(producer)
            .and_then(|bits| bits.get((n / 64) as usize))
            .is_some_and(|word| word & (1 << (n % 64)) != 0)
    }
}

/// What the bench header of a message says: `RUN/PRODUCER/N/SENT`, the
/// run, the producer (from 0), its sequence number (from 0), and when it was
/// sent (µs into the run). One header, so the bench adds little to a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark<'a> {
    pub run: &'a str,
    /// `None` when the numbers cannot be read.
    pub seq: Option<Seq>,
}

/// A message's place in its producer's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seq {
    pub producer: usize,
    pub n: u64,
    pub sent_at: u64,
}

impl Seq {
    /// The header's value for this message of `run`.
    pub fn value(&self, run: &str) -> String {
        format!("{run}/{}/{}/{}", self.producer, self.n, self.sent_at)
    }
}

/// Reads a bench header's value.
pub fn parse_mark(value: &str) -> Mark<'_> {
    let (run, rest) = value.split_once('/').unwrap_or((value, ""));
    let mut numbers = rest.split('/');
    let mut next = || numbers.next()?.parse::<u64>().ok();
    let seq = (|| {
        let seq = Seq {
            producer: usize::try_from(next()?).ok()?,
            n: next()?,
            sent_at: next()?,
        };
        Some(seq)
    })()
    .filter(|_| numbers.next().is_none());
    Mark { run, seq }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_first_arrivals_and_duplicates_per_producer() {
        let mut ledger = Ledger::new(2);
        assert!(ledger.mark(0, 0));
        assert!(ledger.mark(0, 130));
        assert!(ledger.mark(1, 0));
        assert!(!ledger.mark(0, 130));
        assert!(!ledger.mark(1, 0));
        assert_eq!((ledger.unique, ledger.duplicates), (3, 2));
        assert!(ledger.has(0, 130) && ledger.has(0, 0) && ledger.has(1, 0));
        assert!(!ledger.has(0, 129) && !ledger.has(1, 1) && !ledger.has(2, 0));
        assert!(!ledger.has(1, 1 << 40));
    }

    #[test]
    fn marks_read_back_and_garbage_is_refused() {
        let seq = Seq {
            producer: 3,
            n: 12345,
            sent_at: 678,
        };
        let value = seq.value("99-1234");
        assert_eq!(value, "99-1234/3/12345/678");
        assert_eq!(
            parse_mark(&value),
            Mark {
                run: "99-1234",
                seq: Some(seq)
            }
        );
        for bad in [
            "99-1234",
            "99-1234/",
            "99-1234/3/4",
            "99-1234/a/4/5",
            "99-1234/3/-1/5",
            "99-1234/3/4/5/6",
            "99-1234/99999999999999999999/1/1",
        ] {
            assert_eq!(parse_mark(bad).run, "99-1234", "{bad:?}");
            assert_eq!(parse_mark(bad).seq, None, "{bad:?}");
        }
    }
}
