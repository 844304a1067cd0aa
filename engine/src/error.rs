//! Errors the library reports to users. Every error names the file and the place in it (a line, a byte
//! offset, a feature index or id, a TOML key path), so a planner can find and fix the input.

use std::path::{Path, PathBuf};

/// An input file could not be read or understood.
#[derive(Debug, thiserror::Error)]
#[error("{}: {place}: {message}", path.display())]
pub struct InputError {
    /// The file at fault.
    pub path: PathBuf,
    /// Where in the file: `line 12`, `byte 4096`, `feature 17 (id "w123")`, `key flood.rain[0].mm_per_h`, or
    /// `file` when the whole file is at fault (missing, empty, unsupported).
    pub place: String,
    /// What is wrong, in words a user understands.
    pub message: String,
}

impl InputError {
    /// An error at a place in a file.
    pub fn new(path: impl AsRef<Path>, place: impl Into<String>, message: impl Into<String>) -> InputError {
        InputError { path: path.as_ref().to_path_buf(), place: place.into(), message: message.into() }
    }

    /// An error about the whole file (missing, unreadable, wrong format).
    pub fn file(path: impl AsRef<Path>, message: impl Into<String>) -> InputError {
        InputError::new(path, "file", message)
    }

    /// Reading the file failed at the operating-system level.
    pub fn io(path: impl AsRef<Path>, err: std::io::Error) -> InputError {
        let message = match err.kind() {
            std::io::ErrorKind::NotFound => "file not found".to_string(),
            _ => err.to_string(),
        };
        InputError::file(path, message)
    }
}

/// Result alias for input-reading functions.
pub type InputResult<T> = Result<T, InputError>;

/// Reads a whole file, mapping failures to an [`InputError`] that names it.
pub fn read_file(path: &Path) -> InputResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| InputError::io(path, e))
}
