//! Negative cases (models the generator marked invalid by the spec): a refusal is their
//! expected outcome, output from them is `invalid-accepted`.

use crate::model::Negative;
use crate::results::{CaseResult, Verdict};

/// A refusal of a negative case is its expected outcome: `pass`, the refusal kept as message.
pub(super) fn refused_negative(r: &mut CaseResult, negative: Option<Negative>) {
    if negative.is_some()
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
    use crate::results::Origin;

    fn refused(case: &str) -> CaseResult {
        let mut r = CaseResult::unjudged(case, Origin::Derived, "identity", "tract");
        r.message = Some("refused".into());
        r
    }

    #[test]
    fn a_refused_negative_case_passes_and_a_refused_valid_case_does_not() {
        let cfg = GenConfig::default();
        let negative = (0..200)
            .map(|i| generate(0, i, &cfg))
            .find(|c| c.model.negative.is_some())
            .expect("a negative case in 200");
        let s = super::super::case_subject(&negative);
        assert!(s.negative.is_some());
        // The oracle refuses it too, so nothing is expected of the output.
        assert_eq!(s.expected.as_ref().map(Vec::len), Ok(0));
        let mut r = refused("x");
        r.verdict = Verdict::RuntimeRejected;
        refused_negative(&mut r, s.negative);
        assert_eq!(r.verdict, Verdict::Pass);
        assert!(r.message.unwrap().contains("refused"));
        let mut valid = negative.model.clone();
        valid.negative = None;
        valid.layers.pop();
        let s = super::super::case_subject(&case_from(0, 0, valid, negative.input));
        assert!(s.negative.is_none());
        let mut r = refused("x");
        r.verdict = Verdict::ConvertRejected;
        refused_negative(&mut r, s.negative);
        assert_eq!(r.verdict, Verdict::ConvertRejected);
    }
}
