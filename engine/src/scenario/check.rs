//! Range checks for scenario values, shared by every section's `validate`. Each returns the offending key
//! (relative to its section) and a message, which `Scenario::load` turns into an error naming the file.

/// A key and what is wrong with its value.
pub type CheckError = (String, String);

/// `v` must be a finite number above zero.
pub fn positive(key: &str, v: f64) -> Result<(), CheckError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err((key.to_string(), format!("{v} must be a positive number")))
    }
}

/// `v` must be a finite number, zero or more.
pub fn non_negative(key: &str, v: f64) -> Result<(), CheckError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err((key.to_string(), format!("{v} must be zero or more")))
    }
}

/// `v` must be a share (or probability) between 0 and 1.
pub fn share(key: &str, v: f64) -> Result<(), CheckError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err((key.to_string(), format!("{v} is not a share between 0 and 1")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert!(positive("a", 1.0).is_ok() && positive("a", 0.0).is_err() && positive("a", f64::NAN).is_err());
        assert!(non_negative("b", 0.0).is_ok() && non_negative("b", -1e-9).is_err());
        assert!(share("c", 1.0).is_ok() && share("c", 1.01).unwrap_err().0 == "c");
    }
}
