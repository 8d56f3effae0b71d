//! The one way the library tells the user something beside its answer.
//!
//! An analysis that finds its answer partial or degraded (a file missing, a
//! note unreadable, a source that fell back to another) says so in a
//! [`Sink`] it is handed, instead of returning strings of its own. The
//! front-end decides how a notice reaches the user: nptools-cli prints it on
//! stderr once per operand, and a `Vec<Notice>` collects them (for JSON, and
//! for tests).

/// How much a notice matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The answer is given, with a caveat the user should read.
    Warning,
    /// Part of the answer could not be had: the operand counts as failed
    /// (exit status 1) though what could be had is shown.
    Failure,
}

/// One thing the user should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub severity: Severity,
    pub text: String,
}

/// Where notices go.
pub trait Sink {
    /// Take one notice.
    fn notice(&mut self, notice: Notice);

    /// A [`Severity::Warning`].
    fn warn(&mut self, text: String) {
        self.notice(Notice {
            severity: Severity::Warning,
            text,
        });
    }

    /// A [`Severity::Failure`].
    fn fail(&mut self, text: String) {
        self.notice(Notice {
            severity: Severity::Failure,
            text,
        });
    }
}

impl Sink for Vec<Notice> {
    fn notice(&mut self, notice: Notice) {
        self.push(notice);
    }
}
