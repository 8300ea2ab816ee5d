//! Stop strings in streamed text: [`StopMatcher`] holds back text that may still turn out to be
//! the start of a stop string, and never releases a stop string or anything after it.

/// Streams text while watching for stop strings: text that could still turn out to be the start of a
/// stop string is held back until it is decided, and nothing from a stop string on is ever released.
pub struct StopMatcher {
    stops: Vec<String>,
    /// Text received but not yet released.
    held: String,
    stopped: bool,
}

impl StopMatcher {
    /// Watches for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> StopMatcher {
        StopMatcher {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
            stopped: false,
        }
    }

    /// Adds text; returns what can be printed now.
    pub fn push(&mut self, text: &str) -> String {
        if self.stopped {
            return String::new();
        }
        self.held.push_str(text);
        if let Some(at) = self.stops.iter().filter_map(|s| self.held.find(s.as_str())).min() {
            self.stopped = true;
            let out = self.held[..at].to_string();
            self.held.clear();
            return out;
        }
        // Hold back the longest suffix that is a proper prefix of some stop string.
        let keep = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| self.stops.iter().any(|s| s.starts_with(&self.held[i..])))
            .unwrap_or(self.held.len());
        let out = self.held[..keep].to_string();
        self.held.drain(..keep);
        out
    }

    /// Whether a stop string has appeared.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// The text still held back (released when the stream ends without a stop).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut out = String::new();
        for p in pieces {
            out += &m.push(p);
            if m.stopped() {
                return (out, true);
            }
        }
        out += &m.finish();
        (out, false)
    }

    #[test]
    fn stops_across_pieces_and_holds_back_partial_matches() {
        assert_eq!(run(&["\n\n"], &["Hi", " there.\n", "\nUser"]), ("Hi there.".into(), true));
        assert_eq!(run(&["END"], &["aE", "N", "d"]), ("aENd".into(), false));
        assert_eq!(run(&["END", "x"], &["abEN", "Dx"]), ("ab".into(), true));
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
        let mut m = StopMatcher::new(&["ab".to_string()]);
        assert_eq!(m.push("xa"), "x", "the 'a' may start the stop string");
        assert_eq!(m.push("c"), "ac");
    }
}
