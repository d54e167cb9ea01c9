//! Findings: what ingest reports about a master or the release metadata.
//!
//! Every finding has a stable `code` a script can branch on, a severity (an error refuses the
//! release, a warning informs), the file, where in it (field path, sample or byte offset), what
//! was found and how to fix it.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// One of the codes the README lists (a finding read back from a file owns its code).
    pub code: Cow<'static, str>,
    pub severity: Severity,
    pub file: String,
    /// Field path (`tracks[3].isrc`), sample position (`sample 44100`) or byte offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub message: String,
    pub fix: String,
}

impl Finding {
    pub fn error(code: &'static str, file: &Path, message: String, fix: &str) -> Finding {
        Finding {
            code: Cow::Borrowed(code),
            severity: Severity::Error,
            file: file.display().to_string(),
            location: None,
            message,
            fix: fix.to_string(),
        }
    }

    pub fn warning(code: &'static str, file: &Path, message: String, fix: &str) -> Finding {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(code, file, message, fix)
        }
    }

    pub fn at(mut self, location: impl Into<String>) -> Finding {
        self.location = Some(location.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}[{}] {}", self.code, self.file)?;
        if let Some(loc) = &self.location {
            write!(f, " ({loc})")?;
        }
        write!(f, ": {} (fix: {})", self.message, self.fix)
    }
}
