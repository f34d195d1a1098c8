//! Negative cases (models the generator marked invalid by the spec): a refusal is their
//! expected outcome, output from them is `invalid-accepted`.

use super::Subject;
use crate::compare::Verdict;
use crate::report::CaseResult;

/// Whether a subject is a negative case: a generated model marked invalid by the spec.
pub(super) fn is_negative(s: &Subject) -> bool {
    s.classes.iter().any(|c| c.starts_with("negative="))
}

/// A refusal of a negative case is its expected outcome: `pass`, the refusal kept as message.
pub(super) fn refused_negative(r: &mut CaseResult, negative: bool) {
    if negative
        && matches!(
            r.verdict,
            Verdict::ConvertRejected | Verdict::RuntimeRejected
        )
    {
        r.message = Some(format!(
            "refused a model invalid by the spec ({}): {}",
            r.verdict.name(),
            r.message.as_deref().unwrap_or("")
        ));
        r.verdict = Verdict::Pass;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{case_from, generate, GenConfig};

    #[test]
    fn a_refused_negative_case_passes_and_a_refused_valid_case_does_not() {
        let cfg = GenConfig::default();
        let negative = (0..200)
            .map(|i| generate(0, i, &cfg))
            .find(|c| c.model.negative.is_some())
            .expect("a negative case in 200");
        let s = super::super::case_subject(&negative);
        assert!(is_negative(&s));
        // The oracle refuses it too, so nothing is expected of the output.
        assert_eq!(s.expected.as_ref().map(Vec::len), Ok(0));
        let mut r = super::super::error_result("x", "identity", "tract", "refused".into());
        r.verdict = Verdict::RuntimeRejected;
        refused_negative(&mut r, true);
        assert_eq!(r.verdict, Verdict::Pass);
        assert!(r.message.unwrap().contains("refused"));
        let mut valid = negative.model.clone();
        valid.negative = None;
        valid.layers.pop();
        let s = super::super::case_subject(&case_from(0, 0, valid, negative.input));
        assert!(!is_negative(&s));
        let mut r = super::super::error_result("x", "identity", "tract", "refused".into());
        r.verdict = Verdict::ConvertRejected;
        refused_negative(&mut r, false);
        assert_eq!(r.verdict, Verdict::ConvertRejected);
    }
}
