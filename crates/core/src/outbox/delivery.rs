//! Delivering the outbox: one attempt at a conversation's head entry, the request per
//! operation, and settling an answer without a row by reading the message by id.
//!
//! On a pass over many entries, the confirmation of one entry is written in the same writer
//! transaction that records the attempt at the next ([`Store::begin_attempt`]): one SQLite
//! transaction per delivered entry, every attempt recorded before its request leaves.
//!
//! [`Store::begin_attempt`]: crate::store::Store::begin_attempt

use chrono::Utc;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::time::Instant;
use uuid::Uuid;
use werkfunk_protocol::rows;

use super::{Attempt, DrainOutcome, Entry, Failure, InFlight, Op, Outbox, SendState};
use crate::api::ApiError;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::store::outbox::{Confirmation, Head};
use crate::store::ts;

/// A delivery the server confirmed, waiting to be written with the next attempt.
#[derive(Debug)]
pub(super) struct Confirmed {
    confirmation: Confirmation,
    message_id: Option<Uuid>,
}

pub(super) enum Delivery {
    Confirmed(Option<Box<rows::Message>>, Option<Box<rows::ConversationMember>>),
    Transient(String),
    Refused(Failure),
}

impl Outbox {
    // --- delivering ---------------------------------------------------------------------------

    /// Tries the head entry of `conversation` once; its confirmation is written before this
    /// returns.
    pub async fn attempt(&self, conversation: Uuid) -> Result<Attempt> {
        let mut pending = None;
        let attempt = self.step(conversation, &mut pending).await;
        self.settle_pending(conversation, pending).await?;
        attempt
    }

    /// One attempt at the head of `conversation`. `pending` carries a confirmation not yet
    /// written: it is written in the transaction that begins this attempt, and a delivery
    /// confirmed now is left in it for the next step (or [`Outbox::settle_pending`]).
    pub(super) async fn step(&self, conversation: Uuid, pending: &mut Option<Confirmed>) -> Result<Attempt> {
        let previous = pending.take();
        let (changed, head) =
            match self.store.begin_attempt(conversation, previous.as_ref().map(|p| p.confirmation.clone())).await {
                Ok(begun) => begun,
                Err(e) => {
                    // Not written: it stays pending for the next try.
                    *pending = previous;
                    return Err(e.into());
                }
            };
        if let Some(p) = previous {
            self.confirmed(conversation, &p, changed);
        }
        let entry = match head {
            Head::Empty => return Ok(Attempt::Empty),
            Head::Failed(entry) => return Ok(Attempt::Blocked { entry: entry.id }),
            Head::Begun(entry) => entry,
        };
        if !self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(entry.id) {
            // Another task of this process is on it.
            return Ok(Attempt::Transient { entry: entry.id, error: "already being sent".into() });
        }
        let _guard = InFlight(&self.in_flight, entry.id);
        self.emit(entry.id, conversation, entry.message_id, SendState::Sending, None);
        match self.deliver(&entry).await {
            Ok(Delivery::Confirmed(message, member)) => {
                let confirmation = Confirmation { entry: entry.id, message: message.map(|m| *m), member: member.map(|m| *m) };
                *pending = Some(Confirmed { confirmation, message_id: entry.message_id });
                Ok(Attempt::Done { entry: entry.id })
            }
            Ok(Delivery::Transient(error)) => {
                self.emit(entry.id, conversation, entry.message_id, SendState::Queued, Some(error.clone()));
                Ok(Attempt::Transient { entry: entry.id, error })
            }
            Ok(Delivery::Refused(failure)) => {
                self.store.fail_entry(entry.id, &failure).await?;
                tracing::warn!(entry = %entry.id, code = %failure.code, "outbox entry refused for good");
                self.emit(entry.id, conversation, entry.message_id, SendState::Failed, Some(failure.to_string()));
                Ok(Attempt::Failed { entry: entry.id, failure })
            }
            Err(e) => {
                // The session ended, or the store failed: the entry stays queued as it was.
                self.emit(entry.id, conversation, entry.message_id, SendState::Queued, Some(e.to_string()));
                Err(e)
            }
        }
    }

    /// Writes a confirmation left by the last step of a pass.
    pub(super) async fn settle_pending(&self, conversation: Uuid, pending: Option<Confirmed>) -> Result<()> {
        if let Some(p) = pending {
            let changed = self.store.confirm(p.confirmation.clone()).await?;
            self.confirmed(conversation, &p, changed);
        }
        Ok(())
    }

    /// Announces a confirmation once it is written.
    fn confirmed(&self, conversation: Uuid, p: &Confirmed, changed: Vec<Uuid>) {
        self.emit(p.confirmation.entry, conversation, p.message_id, SendState::Sent, None);
        for id in changed {
            self.events.emit(Event::MessageUpserted { conversation_id: conversation, message_id: id });
        }
    }

    /// One request for `entry`, settled to confirmed / transient / refused.
    async fn deliver(&self, entry: &Entry) -> Result<Delivery> {
        let api = self.session.api().clone();
        let me = self.session.user_id();
        let message = entry.message_id.map(|m| m.to_string()).unwrap_or_default();
        let result = match entry.op {
            Op::Send => {
                let body = json!({
                    "id": entry.message_id,
                    "conversation_id": entry.conversation_id,
                    "content": entry.content().unwrap_or_default(),
                    "type": "text",
                });
                self.session
                    .call(|t| {
                        let (api, body) = (api.clone(), body.clone());
                        async move {
                            api.rest(
                                Method::POST,
                                "/messages",
                                &t,
                                &[("on_conflict", "id".into()), ("select", "*".into())],
                                Some("return=representation,resolution=ignore-duplicates"),
                                Some(&body),
                            )
                            .await
                        }
                    })
                    .await
            }
            Op::Edit | Op::Delete => {
                let body = if entry.op == Op::Edit {
                    json!({"content": entry.content().unwrap_or_default()})
                } else {
                    json!({"deleted_at": ts(Utc::now())})
                };
                self.session
                    .call(|t| {
                        let (api, body, id) = (api.clone(), body.clone(), message.clone());
                        async move {
                            api.rest(
                                Method::PATCH,
                                "/messages",
                                &t,
                                &[("id", format!("eq.{id}")), ("select", "*".into())],
                                Some("return=representation"),
                                Some(&body),
                            )
                            .await
                        }
                    })
                    .await
            }
            Op::NotificationRead => {
                let filter: Vec<(&str, String)> = match (entry.body.get("id"), entry.body.get("until")) {
                    (Some(id), _) => vec![("id", format!("eq.{}", id.as_str().unwrap_or_default()))],
                    (None, Some(until)) => {
                        vec![("read", "is.false".into()), ("created_at", format!("lte.{}", until.as_str().unwrap_or_default()))]
                    }
                    _ => return Ok(Delivery::Confirmed(None, None)),
                };
                let done = self
                    .session
                    .call(|t| {
                        let (api, filter) = (api.clone(), filter.clone());
                        async move {
                            let mut query = filter;
                            query.push(("select", "id".into()));
                            api.rest(
                                Method::PATCH,
                                "/notifications",
                                &t,
                                &query,
                                Some("return=representation"),
                                Some(&json!({"read": true})),
                            )
                            .await
                        }
                    })
                    .await;
                return Ok(match done {
                    // No row: already read, or gone — either way there is nothing left to do.
                    Ok(_) => Delivery::Confirmed(None, None),
                    Err(Error::Api(e)) if e.is_transient() || e.is_unauthorized() => Delivery::Transient(e.to_string()),
                    Err(Error::Api(e)) => Delivery::Refused(failure_of(&e)),
                    Err(e) => return Err(e),
                });
            }
            Op::Read => {
                let body = json!({"last_read_at": entry.body.get("last_read_at")});
                let conv = entry.conversation_id.to_string();
                let marked = self
                    .session
                    .call(|t| {
                        let (api, body, conv) = (api.clone(), body.clone(), conv.clone());
                        async move {
                            api.rest(
                                Method::PATCH,
                                "/conversation_members",
                                &t,
                                &[
                                    ("conversation_id", format!("eq.{conv}")),
                                    ("user_id", format!("eq.{me}")),
                                    ("select", "*".into()),
                                ],
                                Some("return=representation"),
                                Some(&body),
                            )
                            .await
                        }
                    })
                    .await;
                if marked.is_ok() {
                    // The bell follows the conversation: its notifications are read too. Both
                    // writes are idempotent, so a transient failure retries the whole entry.
                    let cleared = self
                        .session
                        .call(|t| {
                            let (api, conv) = (api.clone(), conv.clone());
                            async move {
                                api.rest(
                                    Method::PATCH,
                                    "/notifications",
                                    &t,
                                    &[
                                        ("link", format!("eq./conversations/{conv}")),
                                        ("read", "is.false".into()),
                                        ("select", "id".into()),
                                    ],
                                    Some("return=representation"),
                                    Some(&json!({"read": true})),
                                )
                                .await
                            }
                        })
                        .await;
                    if let Err(Error::Api(e)) = &cleared {
                        if e.is_transient() || e.is_unauthorized() {
                            return Ok(Delivery::Transient(e.to_string()));
                        }
                    }
                }
                marked
            }
        };
        let (rows, refusal) = match result {
            Ok(Value::Array(rows)) => (rows, None),
            Ok(other) => return Ok(Delivery::Transient(format!("unexpected answer: {other}"))),
            Err(Error::Api(e)) if e.is_transient() || e.is_unauthorized() => return Ok(Delivery::Transient(e.to_string())),
            Err(Error::Api(e)) => (Vec::new(), Some(e)),
            Err(e) => return Err(e),
        };
        if entry.op == Op::Read {
            // Our membership row, or none: marking read where we are no longer a member is moot.
            return Ok(match refusal {
                Some(e) => Delivery::Refused(failure_of(&e)),
                None => {
                    Delivery::Confirmed(None, rows.into_iter().next().and_then(|r| serde_json::from_value(r).ok()).map(Box::new))
                }
            });
        }
        if let Some(row) = rows.into_iter().next() {
            let row: rows::Message = serde_json::from_value(row).map_err(|e| Error::Api(ApiError::Decode(e.to_string())))?;
            return Ok(Delivery::Confirmed(Some(Box::new(row)), None));
        }
        self.settle(entry, me, refusal).await
    }

    /// No row came back (or the server refused): read the message by id to see what is true.
    async fn settle(&self, entry: &Entry, me: Uuid, refusal: Option<ApiError>) -> Result<Delivery> {
        let Some(id) = entry.message_id else { return Ok(Delivery::Confirmed(None, None)) };
        let api = self.session.api().clone();
        let found = self
            .session
            .call(|t| {
                let api = api.clone();
                async move {
                    api.get::<Vec<rows::Message>>("/messages", &t, &[("id", format!("eq.{id}")), ("select", "*".into())]).await
                }
            })
            .await;
        let found = match found {
            Ok(rows) => rows.into_iter().next(),
            Err(Error::Api(e)) if e.is_transient() || e.is_unauthorized() => return Ok(Delivery::Transient(e.to_string())),
            Err(Error::Api(e)) => return Ok(Delivery::Refused(failure_of(refusal.as_ref().unwrap_or(&e)))),
            Err(e) => return Err(e),
        };
        let refused = |fallback: Failure| Delivery::Refused(refusal.as_ref().map(failure_of).unwrap_or(fallback));
        Ok(match (entry.op, found) {
            (Op::Send, Some(m)) if m.conversation_id == entry.conversation_id && m.sender_id == me => {
                Delivery::Confirmed(Some(Box::new(m)), None)
            }
            (Op::Send, Some(_)) => Delivery::Refused(Failure {
                code: "id_conflict".into(),
                message: "the message id is already used by another message".into(),
            }),
            (Op::Send, None) => refused(Failure {
                code: "id_conflict".into(),
                message: "the message id is taken by a message this account cannot see".into(),
            }),
            (Op::Edit, Some(m)) if Some(m.content.as_str()) == entry.content() && m.sender_id == me => {
                Delivery::Confirmed(Some(Box::new(m)), None)
            }
            (Op::Delete, Some(m)) if m.deleted_at.is_some() && m.sender_id == me => Delivery::Confirmed(Some(Box::new(m)), None),
            (_, _) => refused(Failure {
                code: "42501".into(),
                message: "the message can no longer be changed (not yours, or no longer a member)".into(),
            }),
        })
    }

    /// One bounded pass over `conversation`: delivers in order until the queue is empty, an
    /// entry has failed, the server is unreachable, or `deadline` passes.
    pub async fn drain_once(&self, conversation: Uuid, deadline: Instant) -> Result<DrainOutcome> {
        let mut pending = None;
        let outcome = loop {
            if Instant::now() >= deadline {
                break Ok(DrainOutcome::TimedOut);
            }
            match tokio::time::timeout_at(deadline, self.step(conversation, &mut pending)).await {
                Err(_) => break Ok(DrainOutcome::TimedOut),
                Ok(Err(e)) => break Err(e),
                Ok(Ok(Attempt::Done { .. })) => continue,
                Ok(Ok(Attempt::Empty)) => break Ok(DrainOutcome::Empty),
                Ok(Ok(Attempt::Blocked { .. } | Attempt::Failed { .. })) => break Ok(DrainOutcome::Blocked),
                Ok(Ok(Attempt::Transient { error, .. })) => break Ok(DrainOutcome::Unreachable(error)),
            }
        };
        self.settle_pending(conversation, pending).await?;
        outcome
    }
}

fn failure_of(e: &ApiError) -> Failure {
    match e {
        ApiError::Rest { code, message, .. } | ApiError::Auth { code, message, .. } => {
            Failure { code: code.clone(), message: message.clone() }
        }
        other => Failure { code: other.code().into(), message: other.to_string() },
    }
}
