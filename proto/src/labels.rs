//! What names an execution besides its id: the model, workspace, session, endpoint and end user
//! (`billing.v1.Labels`), copied onto its hold and its usage record. One rule checks them, wherever they
//! are read: executor-svc before it calls a model, billing-svc before it holds or settles.

use crate::billing::v1::{Labels, MeterOpen, SettleRequest};

/// The longest workspace id, session id, endpoint or end user, in characters.
pub const MAX_LABEL_CHARS: usize = 128;
/// The longest model name, in characters (as a price's model: BILLING.md, "Prices").
pub const MAX_MODEL_CHARS: usize = 200;

/// A label that breaks the rule: the field it is and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {problem}")]
pub struct LabelError {
    pub field: &'static str,
    pub problem: String,
}

impl Labels {
    /// Checks every label: the model 1 to [`MAX_MODEL_CHARS`] printable characters, the others at most
    /// [`MAX_LABEL_CHARS`] characters and no control characters (empty: none).
    pub fn validate(&self) -> Result<(), LabelError> {
        let model_chars = self.model.chars().count();
        if self.model.trim().is_empty()
            || model_chars > MAX_MODEL_CHARS
            || self.model.chars().any(char::is_control)
        {
            return Err(LabelError {
                field: "model",
                problem: format!("must be 1 to {MAX_MODEL_CHARS} printable characters"),
            });
        }
        for (field, value) in [
            ("workspace_id", &self.workspace_id),
            ("session_id", &self.session_id),
            ("endpoint", &self.endpoint),
            ("end_user_id", &self.end_user_id),
        ] {
            if value.chars().count() > MAX_LABEL_CHARS {
                return Err(LabelError {
                    field,
                    problem: format!("must be at most {MAX_LABEL_CHARS} characters"),
                });
            }
            if value.chars().any(char::is_control) {
                return Err(LabelError {
                    field,
                    problem: "must not contain control characters".to_string(),
                });
            }
        }
        Ok(())
    }
}

/// The labels of a message from before `labels`: its separate fields, taken.
fn separate(
    model: &mut String,
    workspace_id: &mut String,
    session_id: &mut String,
    endpoint: &mut String,
    end_user_id: &mut String,
) -> Labels {
    Labels {
        model: std::mem::take(model),
        workspace_id: std::mem::take(workspace_id),
        session_id: std::mem::take(session_id),
        endpoint: std::mem::take(endpoint),
        end_user_id: std::mem::take(end_user_id),
    }
}

impl MeterOpen {
    /// The execution's labels: `labels`, or the fields an executor-svc from before it sent.
    pub fn take_labels(&mut self) -> Labels {
        self.labels.take().unwrap_or_else(|| {
            separate(
                &mut self.model,
                &mut self.workspace_id,
                &mut self.session_id,
                &mut self.endpoint,
                &mut self.end_user_id,
            )
        })
    }
}

impl SettleRequest {
    /// As [`MeterOpen::take_labels`].
    pub fn take_labels(&mut self) -> Labels {
        self.labels.take().unwrap_or_else(|| {
            separate(
                &mut self.model,
                &mut self.workspace_id,
                &mut self.session_id,
                &mut self.endpoint,
                &mut self.end_user_id,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels {
            model: "gpt-4o-mini".into(),
            workspace_id: "w".repeat(MAX_LABEL_CHARS),
            session_id: "é".repeat(MAX_LABEL_CHARS),
            endpoint: "/v1/chat/completions".into(),
            end_user_id: String::new(),
        }
    }

    #[test]
    fn labels_up_to_the_limit_in_characters_pass() {
        assert_eq!(labels().validate(), Ok(()));
    }

    #[test]
    fn each_rule_names_the_field_it_refuses() {
        let refused = |labels: Labels| labels.validate().unwrap_err().field;
        assert_eq!(
            refused(Labels {
                model: " ".into(),
                ..labels()
            }),
            "model"
        );
        assert_eq!(
            refused(Labels {
                model: "m".repeat(MAX_MODEL_CHARS + 1),
                ..labels()
            }),
            "model"
        );
        assert_eq!(
            refused(Labels {
                workspace_id: "w".repeat(MAX_LABEL_CHARS + 1),
                ..labels()
            }),
            "workspace_id"
        );
        assert_eq!(
            refused(Labels {
                endpoint: "/a\nb".into(),
                ..labels()
            }),
            "endpoint"
        );
        assert_eq!(
            refused(Labels {
                end_user_id: "u".repeat(MAX_LABEL_CHARS + 1),
                ..labels()
            }),
            "end_user_id"
        );
    }

    #[test]
    fn the_fields_before_labels_are_read_when_labels_is_absent() {
        let mut open = MeterOpen {
            model: "m".into(),
            workspace_id: "w".into(),
            end_user_id: "u".into(),
            ..Default::default()
        };
        let labels = open.take_labels();
        assert_eq!(
            (
                labels.model.as_str(),
                labels.workspace_id.as_str(),
                labels.end_user_id.as_str()
            ),
            ("m", "w", "u")
        );
        let mut open = MeterOpen {
            model: "old".into(),
            labels: Some(Labels {
                model: "new".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(open.take_labels().model, "new");
    }
}
