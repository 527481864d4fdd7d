//! pivault-staff: which operators of the privacy office and support may read which PI, for
//! which purpose, in clear or masked — decided by [Cedar](https://www.cedarpolicy.com)
//! policies kept beside the pivault policy file (`policies/staff.cedar`).
//!
//! The privacy policy's §8.1 promises "access controls to ensure that only authorized
//! personnel have access to user information", and PIPL Art. 51(3) requires the PI handler to
//! "determine operation permissions for PI handling". This crate owns that determination for
//! *operators* (people: roles `support`, `dpo`, `security`, `admin`); application services are
//! governed by purpose decisions in `pivault_domain::decision` and are not affected.
//!
//! It owns: the Cedar schema derived from a pivault [`Policy`] ([`schema_source`]), loading and
//! validating staff policies ([`StaffPolicy::load`]), the decision ([`StaffPolicy::authorize`])
//! and masking of values shown masked ([`mask`]).
//!
//! Invariants:
//! - **any error is a deny**: an unknown category, purpose or role, an entity that cannot be
//!   built, or a policy that errors while evaluating (Cedar would otherwise just skip it —
//!   dangerous for a `forbid`) gives [`StaffAccess::Denied`];
//! - a [`StaffPolicy`] only exists for policy text that parsed and passed Cedar's strict
//!   validation against the derived schema, with every `Category::"…"` literal naming a
//!   category of the pivault policy; so a typo in a group, role, purpose or category is
//!   refused at load instead of silently never matching (a `forbid` that never matches opens
//!   access);
//! - nothing here does IO or panics on input.
//!
//! Cedar model (see [`schema_source`] for the exact text):
//! - `Operator::"<name>" in Role::"<role>"` for each known role the operator holds;
//! - `Category::"<key>" in CategoryGroup::"sensitive" | "personal" | "non_personal"` by
//!   sensitivity, in every dotted prefix group (`user.contact.mobile` is in
//!   `CategoryGroup::"user.contact"` and `CategoryGroup::"user"`), and in
//!   `CategoryGroup::"identifier"` if it carries a blind-indexed identifier;
//! - actions `Action::"read"` (clear) and `Action::"read_masked"`;
//! - `context.purpose` is a `Purpose::"<id>"` entity, one per purpose of the pivault policy.
//!
//! ```
//! use pivault_domain::policy::Policy;
//! use pivault_staff::{StaffAccess, StaffPolicy};
//!
//! let policy = Policy::parse(include_str!("../../../policies/default.toml")).unwrap();
//! let staff = StaffPolicy::load(
//!     include_str!("../../../policies/staff.cedar"),
//!     "policies/staff.cedar",
//!     &policy,
//! )
//! .unwrap();
//! let support = ["support".to_owned()];
//! assert_eq!(
//!     staff.authorize("li.lei", &support, "user.contact.mobile", "service"),
//!     StaffAccess::Masked
//! );
//! assert_eq!(
//!     staff.authorize("li.lei", &support, "user.government_id.id_card", "service"),
//!     StaffAccess::Denied
//! );
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use pivault_domain::policy::{Policy, Sensitivity};

mod mask;
pub use mask::mask;

/// The Cedar crate this policy engine is built on, so that a caller (a benchmark comparing
/// decision engines) can call [`cedar_policy::Authorizer::is_authorized`] with the very
/// version used here.
pub use cedar_policy;

/// The operator roles staff policies may name, as `Role::"<role>"`.
const ROLES: [&str; 4] = ["support", "dpo", "security", "admin"];

/// The result of an operator's read of one category of PI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffAccess {
    /// The value may be shown as stored (Cedar permitted `Action::"read"`).
    Clear,
    /// Only [`mask`]ed values may be shown (Cedar permitted `Action::"read_masked"` but not
    /// `Action::"read"`).
    Masked,
    /// Nothing may be shown, not even whether a value exists.
    Denied,
}

/// Refusal of a staff policy file, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.diagnostics.join("\n"))]
pub struct StaffPolicyError {
    /// One line per problem, `path:line:column: message`; line and column are 1-based, the
    /// column counted in characters. `Display` joins them with newlines.
    pub diagnostics: Vec<String>,
}

/// A loaded, validated staff policy: the compiled Cedar policy set, its schema, and the
/// prebuilt category entities (with their group parents) and purpose contexts, so a decision
/// only builds the operator's entity and the request. Immutable; share it behind an `Arc`.
pub struct StaffPolicy {
    policies: PolicySet,
    schema: Schema,
    authorizer: Authorizer,
    operator_type: EntityTypeName,
    roles: HashMap<&'static str, EntityUid>,
    categories: HashMap<String, (EntityUid, Entity)>,
    contexts: HashMap<String, Context>,
    read: EntityUid,
    read_masked: EntityUid,
}

impl fmt::Debug for StaffPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaffPolicy")
            .field("policies", &self.policies.policies().count())
            .field("categories", &self.categories.len())
            .field("purposes", &self.contexts.len())
            .finish_non_exhaustive()
    }
}

impl StaffPolicy {
    /// Parses `source` (Cedar policy text, e.g. `policies/staff.cedar`) and validates it in
    /// strict mode against the schema derived from `policy` ([`schema_source`]); also checks
    /// that every `Category::"…"` literal is a category of `policy`. `path` is only used in
    /// the messages.
    ///
    /// Source: policy §8.1 (access controls), PIPL Art. 51(3) (operation permissions).
    ///
    /// # Errors
    /// [`StaffPolicyError`] with one `path:line:column: message` per problem: each Cedar parse
    /// error; each validation error (unknown entity type, role, group, purpose, action or
    /// attribute, type errors); each unknown category; policy templates (`?principal`), which
    /// are refused because an unlinked template never applies. Never panics.
    pub fn load(
        source: &str,
        path: &str,
        policy: &Policy,
    ) -> Result<StaffPolicy, StaffPolicyError> {
        let fail = |diagnostics| Err(StaffPolicyError { diagnostics });
        let schema = match Schema::from_cedarschema_str(&schema_source(policy)) {
            Ok((schema, _warnings)) => schema,
            Err(e) => {
                return fail(vec![format!(
                    "{path}:1:1: cannot derive the staff schema: {e}"
                )])
            }
        };
        let policies = match PolicySet::from_str(source) {
            Ok(set) => set,
            Err(errors) => {
                return fail(errors.iter().map(|e| render(e, source, path)).collect());
            }
        };
        let mut diagnostics: Vec<String> = Validator::new(schema.clone())
            .validate(&policies, ValidationMode::Strict)
            .validation_errors()
            .map(|e| render(e, source, path))
            .collect();
        if policies.templates().next().is_some() {
            diagnostics.push(format!(
                "{path}:1:1: policy templates are not supported: an unlinked template never applies"
            ));
        }
        let known: HashSet<&str> = policy.categories().iter().map(|c| c.key.as_str()).collect();
        let mut reported = HashSet::new();
        for p in policies.policies() {
            for uid in p.entity_literals() {
                let id = uid.id().unescaped();
                if uid.type_name().to_string() == "Category"
                    && !known.contains(id)
                    && reported.insert(id.to_owned())
                {
                    let text = uid.to_string();
                    let at = source.find(&text).unwrap_or(0);
                    let (line, column) = line_column(source, at);
                    diagnostics.push(format!(
                        "{path}:{line}:{column}: unknown category `{id}`: not in the pivault policy"
                    ));
                }
            }
        }
        if !diagnostics.is_empty() {
            return fail(diagnostics);
        }
        Self::build(policies, schema, policy).map_err(|e| StaffPolicyError {
            diagnostics: vec![format!("{path}:1:1: {e}")],
        })
    }

    fn build(policies: PolicySet, schema: Schema, policy: &Policy) -> Result<StaffPolicy, String> {
        let ty = |name: &str| EntityTypeName::from_str(name).map_err(|e| e.to_string());
        let (operator_type, role_type, category_type, group_type, purpose_type, action_type) = (
            ty("Operator")?,
            ty("Role")?,
            ty("Category")?,
            ty("CategoryGroup")?,
            ty("Purpose")?,
            ty("Action")?,
        );
        let uid = |t: &EntityTypeName, id: &str| {
            EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
        };
        let roles = ROLES.iter().map(|r| (*r, uid(&role_type, r))).collect();
        let categories = policy
            .categories()
            .iter()
            .map(|c| {
                let me = uid(&category_type, &c.key);
                let parents = category_groups(&c.key, c.sensitivity, c.identifier.is_some())
                    .map(|g| uid(&group_type, &g))
                    .collect();
                (
                    c.key.clone(),
                    (me.clone(), Entity::new_no_attrs(me, parents)),
                )
            })
            .collect();
        let mut contexts = HashMap::new();
        for p in policy.purposes() {
            let value = RestrictedExpression::new_entity_uid(uid(&purpose_type, &p.id));
            let context =
                Context::from_pairs([("purpose".to_owned(), value)]).map_err(|e| e.to_string())?;
            contexts.insert(p.id.clone(), context);
        }
        Ok(StaffPolicy {
            policies,
            schema,
            authorizer: Authorizer::new(),
            operator_type,
            roles,
            categories,
            contexts,
            read: uid(&action_type, "read"),
            read_masked: uid(&action_type, "read_masked"),
        })
    }

    /// May operator `name` holding `roles` read `category` (a pivault category key) for
    /// `purpose` (a pivault purpose id): in clear, masked, or not at all?
    ///
    /// Asks Cedar for `Action::"read"` first ([`StaffAccess::Clear`]), then for
    /// `Action::"read_masked"` ([`StaffAccess::Masked`]), else [`StaffAccess::Denied`]. Roles
    /// not in [`StaffPolicy::roles`] are ignored; an unknown category or purpose, or any
    /// evaluation error, is [`StaffAccess::Denied`]. Source: policy §8.1, PIPL Art. 51(3).
    #[must_use]
    pub fn authorize(
        &self,
        name: &str,
        roles: &[String],
        category: &str,
        purpose: &str,
    ) -> StaffAccess {
        self.authorize_all(name, roles, &[category], purpose)
            .pop()
            .unwrap_or(StaffAccess::Denied)
    }

    /// [`StaffPolicy::authorize`] for many categories at once: one result per entry of
    /// `categories`, in order, with the operator's entity and the entity set built once.
    #[must_use]
    pub fn authorize_all(
        &self,
        name: &str,
        roles: &[String],
        categories: &[&str],
        purpose: &str,
    ) -> Vec<StaffAccess> {
        let denied = || vec![StaffAccess::Denied; categories.len()];
        let Some(context) = self.contexts.get(purpose) else {
            return denied();
        };
        let Some((operator, entities)) = self.entities(name, roles, categories) else {
            return denied();
        };
        categories
            .iter()
            .map(|c| match self.categories.get(*c) {
                None => StaffAccess::Denied,
                Some((resource, _)) => {
                    if self.allowed(&operator, &self.read, resource, context, &entities) {
                        StaffAccess::Clear
                    } else if self.allowed(
                        &operator,
                        &self.read_masked,
                        resource,
                        context,
                        &entities,
                    ) {
                        StaffAccess::Masked
                    } else {
                        StaffAccess::Denied
                    }
                }
            })
            .collect()
    }

    /// The roles staff policies may name: `support`, `dpo`, `security`, `admin`.
    #[must_use]
    pub fn roles() -> &'static [&'static str] {
        &ROLES
    }

    /// The Cedar request, entities and policy set that [`StaffPolicy::authorize`] evaluates for
    /// `Action::"read_masked"` of `category` by `name` holding `roles` for `purpose` — for
    /// benchmarking Cedar's `Authorizer::is_authorized` alone against other decision engines
    /// on an equivalent request (e.g. support reading `user.contact.mobile` for `service`).
    /// `None` if the category or purpose is unknown or the entities cannot be built.
    ///
    /// ```
    /// # use pivault_domain::policy::Policy;
    /// # use pivault_staff::StaffPolicy;
    /// use pivault_staff::cedar_policy::{Authorizer, Decision};
    /// # let policy = Policy::parse(include_str!("../../../policies/default.toml")).unwrap();
    /// # let staff = StaffPolicy::load(include_str!("../../../policies/staff.cedar"), "staff.cedar", &policy).unwrap();
    /// let (request, entities, policies) = staff
    ///     .bench_request("li.lei", &["support".to_owned()], "user.contact.mobile", "service")
    ///     .unwrap();
    /// let response = Authorizer::new().is_authorized(&request, policies, &entities);
    /// assert_eq!(response.decision(), Decision::Allow);
    /// ```
    #[must_use]
    pub fn bench_request(
        &self,
        name: &str,
        roles: &[String],
        category: &str,
        purpose: &str,
    ) -> Option<(Request, Entities, &PolicySet)> {
        let context = self.contexts.get(purpose)?;
        let (resource, _) = self.categories.get(category)?;
        let (operator, entities) = self.entities(name, roles, &[category])?;
        let request = Request::new(
            operator,
            self.read_masked.clone(),
            resource.clone(),
            context.clone(),
            Some(&self.schema),
        )
        .ok()?;
        Some((request, entities, &self.policies))
    }

    /// The operator's entity (in its known roles) plus the entities of the known `categories`.
    fn entities(
        &self,
        name: &str,
        roles: &[String],
        categories: &[&str],
    ) -> Option<(EntityUid, Entities)> {
        let operator =
            EntityUid::from_type_name_and_id(self.operator_type.clone(), EntityId::new(name));
        let parents = roles
            .iter()
            .filter_map(|r| self.roles.get(r.as_str()).cloned())
            .collect();
        let mut seen = HashSet::with_capacity(categories.len());
        let resources = categories
            .iter()
            .filter(|c| seen.insert(**c))
            .filter_map(|c| self.categories.get(*c).map(|(_, e)| e.clone()));
        let me = Entity::new_no_attrs(operator.clone(), parents);
        // No schema check here: category entities were built from the schema's own source,
        // and the operator only gets parents among the schema's roles.
        let entities = Entities::from_entities(std::iter::once(me).chain(resources), None).ok()?;
        Some((operator, entities))
    }

    fn allowed(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
        context: &Context,
        entities: &Entities,
    ) -> bool {
        let Ok(request) = Request::new(
            principal.clone(),
            action.clone(),
            resource.clone(),
            context.clone(),
            None,
        ) else {
            return false;
        };
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, entities);
        // Cedar skips a policy whose evaluation errors; for a `forbid` that would open access,
        // so any error denies.
        response.decision() == Decision::Allow && response.diagnostics().errors().next().is_none()
    }
}

/// The Cedar schema (Cedar schema syntax) staff policies are validated against, derived from
/// `policy`: enumerated `Role`, `Purpose` (its purpose ids) and `CategoryGroup` (sensitivity
/// groups `sensitive`, `personal`, `non_personal`, the group `identifier`, and every dotted
/// prefix of a category key); `Category in [CategoryGroup]`; `Operator in [Role]`; actions
/// `read` and `read_masked` from `Operator` on `Category` with context `{ purpose: Purpose }`.
///
/// `policies/staff.cedarschema` is this text for `policies/default.toml`, for editors and the
/// `cedar` command-line tool; a test keeps it current.
#[must_use]
pub fn schema_source(policy: &Policy) -> String {
    let list = |items: &mut dyn Iterator<Item = String>| {
        items
            .map(|s| format!("\n  \"{}\"", escape(&s)))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut groups: BTreeSet<String> = ["sensitive", "personal", "non_personal", "identifier"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    for c in policy.categories() {
        groups.extend(category_groups(&c.key, c.sensitivity, false));
    }
    let purpose = if policy.purposes().is_empty() {
        "entity Purpose;\n".to_owned()
    } else {
        format!(
            "entity Purpose enum [{}\n];\n",
            list(&mut policy.purposes().iter().map(|p| p.id.clone()))
        )
    };
    format!(
        "// Generated by pivault_staff::schema_source from the pivault policy; do not edit.\n\
         entity Role enum [{roles}\n];\n\
         {purpose}\
         entity CategoryGroup enum [{groups}\n];\n\
         entity Category in [CategoryGroup];\n\
         entity Operator in [Role];\n\
         action \"read\", \"read_masked\" appliesTo {{\n  \
           principal: Operator,\n  \
           resource: Category,\n  \
           context: {{ purpose: Purpose }}\n\
         }};\n",
        roles = list(&mut ROLES.iter().map(|r| (*r).to_owned())),
        groups = list(&mut groups.into_iter()),
    )
}

/// The groups a category is in: its sensitivity, every dotted prefix of its key, and
/// `identifier` if `identifier` is set.
fn category_groups(
    key: &str,
    sensitivity: Sensitivity,
    identifier: bool,
) -> impl Iterator<Item = String> + '_ {
    let level = match sensitivity {
        Sensitivity::Sensitive => "sensitive",
        Sensitivity::Personal => "personal",
        Sensitivity::NonPersonal => "non_personal",
    };
    std::iter::once(level.to_owned())
        .chain(identifier.then(|| "identifier".to_owned()))
        .chain(key.match_indices('.').map(|(i, _)| key[..i].to_owned()))
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `path:line:column: message` for a Cedar diagnostic, at its first labelled span.
fn render(d: &dyn miette::Diagnostic, source: &str, path: &str) -> String {
    let label = d.labels().and_then(|mut labels| labels.next());
    let (line, column) = line_column(
        source,
        label.as_ref().map_or(0, miette::LabeledSpan::offset),
    );
    let mut message = d.to_string();
    if let Some(text) = label.as_ref().and_then(|l| l.label()) {
        if !message.contains(text) {
            message = format!("{message}: {text}");
        }
    }
    if let Some(help) = d.help() {
        message = format!("{message} (help: {help})");
    }
    format!("{path}:{line}:{column}: {message}")
}

/// 1-based line and column (in characters) of byte `offset` in `source`; an offset past the
/// end or inside a character counts as the position of the character it falls in or after.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let (mut line, mut column) = (1, 1);
    for (i, ch) in source.char_indices() {
        if i >= offset {
            break;
        }
        if ch == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::line_column;

    #[test]
    fn line_column_counts_characters_from_one() {
        let s = "ab\n陈鹏x\n";
        assert_eq!(line_column(s, 0), (1, 1));
        assert_eq!(line_column(s, 3), (2, 1));
        assert_eq!(line_column(s, 9), (2, 3));
        assert_eq!(line_column(s, 4), (2, 2));
        assert_eq!(line_column(s, 1000), (3, 1));
    }
}
