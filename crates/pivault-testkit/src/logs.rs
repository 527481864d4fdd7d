//! Log capture: one process-wide tracing subscriber at TRACE level writing every line (no ANSI
//! colours) to an in-memory buffer, so a test can search the logs for PI.
//!
//! The subscriber is the global default, installed by the first call to [`captured_logs`]; it
//! sees every thread and runtime of the test binary, so a search covers the logs of every test
//! that ran so far (which only makes "no PI in the logs" stricter).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// The captured output of the whole test binary.
#[derive(Clone, Debug)]
pub struct LogCapture {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl LogCapture {
    /// Everything captured so far.
    #[must_use]
    pub fn bytes(&self) -> Vec<u8> {
        self.buf.lock().unwrap().clone()
    }

    /// Everything captured so far, as (lossy) UTF-8.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// Whether `needle` occurs in the captured bytes.
    #[must_use]
    pub fn contains(&self, needle: &str) -> bool {
        let hay = self.buf.lock().unwrap();
        !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    /// The index in `needles` of one that occurs in the captured bytes, if any: one pass over
    /// the buffer for all of them (Aho-Corasick), so thousands of values can be checked
    /// against the logs of a whole test binary, which run to hundreds of megabytes at TRACE.
    /// Empty needles are ignored.
    #[must_use]
    pub fn find_any<S: AsRef<str>>(&self, needles: &[S]) -> Option<usize> {
        let pats: Vec<(usize, &str)> = needles
            .iter()
            .enumerate()
            .map(|(i, n)| (i, n.as_ref()))
            .filter(|(_, n)| !n.is_empty())
            .collect();
        if pats.is_empty() {
            return None;
        }
        let ac = aho_corasick::AhoCorasick::new(pats.iter().map(|(_, n)| n.as_bytes()))
            .expect("an automaton of the needles");
        let hay = self.buf.lock().unwrap();
        ac.find(&hay[..]).map(|m| pats[m.pattern().as_usize()].0)
    }

    /// Panics naming the first of `needles` (values in clear) found in the logs.
    pub fn assert_absent<S: AsRef<str>>(&self, needles: &[S]) {
        if let Some(i) = self.find_any(needles) {
            panic!("PI in the logs: {:?}", needles[i].as_ref());
        }
    }
}

/// Installs the capturing subscriber (once per process) and returns its buffer. If another
/// global subscriber was installed first, nothing is captured: call this before logging.
pub fn captured_logs() -> LogCapture {
    static CAPTURE: OnceLock<LogCapture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let b = Arc::clone(&buf);
            let sub = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || Writer(Arc::clone(&b)))
                .finish();
            let _ = tracing::subscriber::set_global_default(sub);
            LogCapture { buf }
        })
        .clone()
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl Write for Writer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
