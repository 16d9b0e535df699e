//! Attributes of `POST`/`PUT /access_persons` (remotelock-api.md §3.5): parsing, merging onto
//! the stored person, and validation. Message texts are ours; the docs list none.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::directory::{AccessPerson, GuestWindow, PersonKind, PersonType};
use crate::errors::{ApiError, ApiResult, Violations};
use crate::pin_conflicts::{PinGuard, Stage};
use crate::wall_clock;

/// An optional attribute as sent: `None` = not sent, `Some(None)` = sent empty (clears it).
type Sent<T> = Option<Option<T>>;

/// What a request asked to change.
pub struct PersonInput {
    name: Sent<String>,
    email: Sent<String>,
    phone: Sent<String>,
    pin: Sent<String>,
    card_number: Sent<String>,
    department: Sent<String>,
    starts_at: Sent<NaiveDateTime>,
    ends_at: Sent<NaiveDateTime>,
    generate_pin: bool,
}

impl PersonInput {
    /// Type errors go to `violations`; the offending attribute then counts as not sent.
    pub fn parse(attributes: &Map<String, Value>, violations: &mut Violations) -> Self {
        Self {
            name: text(attributes, "name", violations),
            email: text(attributes, "email", violations),
            phone: text(attributes, "phone", violations),
            pin: text(attributes, "pin", violations),
            card_number: text(attributes, "card_number", violations),
            department: text(attributes, "department", violations),
            starts_at: local_time(attributes, "starts_at", violations),
            ends_at: local_time(attributes, "ends_at", violations),
            generate_pin: match attributes.get("generate_pin") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(generate)) => *generate,
                Some(_) => {
                    violations.on("generate_pin", "is invalid");
                    false
                }
            },
        }
    }
}

fn text(attributes: &Map<String, Value>, name: &str, violations: &mut Violations) -> Sent<String> {
    match attributes.get(name)? {
        Value::Null => Some(None),
        Value::String(s) if s.trim().is_empty() => Some(None),
        Value::String(s) => Some(Some(s.trim().to_owned())),
        _ => {
            violations.on(name, "is invalid");
            None
        }
    }
}

fn local_time(
    attributes: &Map<String, Value>,
    name: &str,
    violations: &mut Violations,
) -> Sent<NaiveDateTime> {
    match text(attributes, name, violations)? {
        None => Some(None),
        Some(raw) => match wall_clock::parse(&raw) {
            Ok(at) => Some(Some(at)),
            Err(e) => {
                violations.on(name, e.message());
                None
            }
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinChange {
    Unchanged,
    /// A `pin` was sent (it wins over `generate_pin`), possibly empty.
    Set,
    Generate,
}

/// A person as it would be after the request, before it is validated and stored.
pub struct PersonDraft {
    person_type: PersonType,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    pin: Option<String>,
    card_number: Option<String>,
    department: Option<String>,
    starts_at: Option<NaiveDateTime>,
    ends_at: Option<NaiveDateTime>,
}

impl PersonDraft {
    pub fn new(person_type: PersonType) -> Self {
        Self {
            person_type,
            name: None,
            email: None,
            phone: None,
            pin: None,
            card_number: None,
            department: None,
            starts_at: None,
            ends_at: None,
        }
    }

    pub fn from_person(person: &AccessPerson) -> Self {
        let (department, window) = match &person.kind {
            PersonKind::User { department } => (department.clone(), None),
            PersonKind::Guest { window } => (None, Some(*window)),
        };
        Self {
            person_type: person.person_type(),
            name: Some(person.name.clone()),
            email: person.email.clone(),
            phone: person.phone.clone(),
            pin: person.pin.clone(),
            card_number: person.card_number.clone(),
            department,
            starts_at: window.map(|w| w.starts_at),
            ends_at: window.map(|w| w.ends_at),
        }
    }

    pub fn apply(&mut self, input: PersonInput) -> PinChange {
        let merge = |field: &mut Option<String>, sent: Sent<String>| {
            if let Some(value) = sent {
                *field = value;
            }
        };
        merge(&mut self.name, input.name);
        merge(&mut self.email, input.email);
        merge(&mut self.phone, input.phone);
        merge(&mut self.card_number, input.card_number);
        if self.person_type == PersonType::User {
            merge(&mut self.department, input.department);
        } else {
            // Windows only exist on guests; users ignore them.
            if let Some(starts_at) = input.starts_at {
                self.starts_at = starts_at;
            }
            if let Some(ends_at) = input.ends_at {
                self.ends_at = ends_at;
            }
        }
        match input.pin {
            Some(pin) => {
                self.pin = pin;
                PinChange::Set
            }
            None if input.generate_pin => PinChange::Generate,
            None => PinChange::Unchanged,
        }
    }

    /// Reports every problem as one 422 echoing `attributes`; when all is well and asked
    /// for, picks a fresh PIN that no live person holds (nor the person's current one).
    pub fn validate(
        &mut self,
        pin_change: PinChange,
        pins: &PinGuard,
        stage: &Stage,
        mut violations: Violations,
        attributes: &Map<String, Value>,
    ) -> ApiResult<()> {
        if self.name.is_none() && !violations.concerns("name") {
            violations.on("name", "can't be blank");
        }
        if self.person_type == PersonType::Guest {
            for (name, value) in [("starts_at", self.starts_at), ("ends_at", self.ends_at)] {
                if value.is_none() && !violations.concerns(name) {
                    violations.on(name, "can't be blank");
                }
            }
            if let (Some(starts_at), Some(ends_at)) = (self.starts_at, self.ends_at)
                && ends_at <= starts_at
            {
                violations.on("ends_at", "must be after starts_at");
            }
        }
        if self.pin.is_none() && self.card_number.is_none() && pin_change != PinChange::Generate {
            violations.add(
                None,
                "At least one of pin, generate_pin or card_number is required",
            );
        }
        if let (PinChange::Set, Some(pin)) = (pin_change, &self.pin) {
            match pins.policy().check(pin) {
                Err(message) => violations.on("pin", &message),
                Ok(()) if pins.clashes(pin, stage) => pins.report_conflict(&mut violations),
                Ok(()) => {}
            }
        }
        violations.into_result(attributes)?;

        if pin_change == PinChange::Generate {
            let current = self.pin.take();
            let fresh = pins
                .policy()
                .generate(|pin| pins.in_use(pin, stage) || current.as_deref() == Some(pin))
                .ok_or_else(|| {
                    ApiError::invalid(
                        attributes,
                        Some("pin"),
                        "could not be generated: no unused PIN left",
                    )
                })?;
            self.pin = Some(fresh);
        }
        Ok(())
    }

    /// Builds a new person from a validated draft.
    pub fn into_person(self, id: Uuid, now: DateTime<Utc>) -> AccessPerson {
        let mut person = AccessPerson {
            id,
            kind: PersonKind::User { department: None },
            name: String::new(),
            email: None,
            phone: None,
            pin: None,
            card_number: None,
            deactivated: false,
            deleted_at: None,
            created_at: now,
            updated_at: now,
        };
        self.write_to(&mut person, now);
        person
    }

    /// Stores a validated draft onto `person`.
    pub fn write_to(self, person: &mut AccessPerson, now: DateTime<Utc>) {
        person.kind = match self.person_type {
            PersonType::User => PersonKind::User {
                department: self.department,
            },
            PersonType::Guest => PersonKind::Guest {
                window: GuestWindow {
                    starts_at: self.starts_at.expect("validated guest window"),
                    ends_at: self.ends_at.expect("validated guest window"),
                },
            },
        };
        person.name = self.name.expect("validated name");
        person.email = self.email;
        person.phone = self.phone;
        person.pin = self.pin;
        person.card_number = self.card_number;
        person.updated_at = now;
    }
}
