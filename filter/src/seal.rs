//! Sealed secrets: AppSecrets, AppCodes and account SKs travel in the plan
//! encrypted, so nothing Envoy shows (the admin `config_dump`, its logs)
//! holds them in plaintext.
//!
//! `pylon compile` seals each value with XChaCha20-Poly1305 under a 32-byte
//! key, with a fresh random 24-byte nonce per value. The associated data
//! names the value's owner and field (`app/<name>/<AppKey>/secret`), so a
//! sealed value copied onto another app or field fails to open. Each sealed
//! value also carries the key's id (a fingerprint, not the key), so the
//! filter can pick the current or the previous key during a rotation.
//!
//! The filter gets the key from Envoy's process environment through
//! `vm_config.environment_variables.host_env_keys`, which `config_dump`
//! lists by name only, and opens every value while it loads the plan. A
//! missing or wrong key, a tampered value or a plaintext secret make loading
//! fail: the gateway then serves nothing (fail closed). Errors name the app
//! or account and field, never a value or a key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::plan::Plan;

/// Envoy environment variable holding the current key (base64, 32 bytes).
pub const KEY_ENV: &str = "PYLON_SEAL_KEY";
/// Optional: the key being rotated out, still accepted while plans sealed
/// with it are served.
pub const PREVIOUS_KEY_ENV: &str = "PYLON_SEAL_KEY_PREVIOUS";

/// Every sealed value starts with this; the format version is in it.
const PREFIX: &str = "pylon-sealed:v1:";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// A 32-byte sealing key. Its `Debug` shows the key id only.
#[derive(Clone)]
pub struct SealKey {
    cipher: XChaCha20Poly1305,
    id: String,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealKey({})", self.id)
    }
}

impl SealKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> SealKey {
        let digest = Sha256::digest([b"pylon seal key id\0".as_slice(), bytes].concat());
        SealKey {
            cipher: XChaCha20Poly1305::new(bytes.into()),
            id: digest.iter().take(8).map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// Base64 (standard alphabet) of exactly 32 bytes; surrounding white
    /// space is ignored. The error never repeats the text.
    pub fn from_base64(text: &str) -> Result<SealKey, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "is not base64".to_string())?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be 32 bytes, base64-encoded".to_string())?;
        Ok(SealKey::from_bytes(&bytes))
    }

    /// The text form [`SealKey::from_base64`] reads (for `pylon keygen`).
    pub fn text_of(bytes: &[u8; 32]) -> String {
        STANDARD.encode(bytes)
    }

    /// A fingerprint of the key (16 hex digits of a SHA-256 over it): tells
    /// keys apart without revealing them.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `value` for the field named by `aad`.
    pub fn seal(&self, nonce: [u8; NONCE_LEN], aad: &str, value: &str) -> String {
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 seals any length we use");
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", self.id, STANDARD.encode(raw))
    }
}

/// Why a value did not open; shown in logs, so it carries no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    NotSealed,
    Malformed,
    /// Sealed with a key whose id is this, which none of ours has.
    UnknownKey(String),
    /// Authentication failed: tampered, or moved from another field or app.
    Rejected,
}

/// Opens a value sealed by [`SealKey::seal`] with one of `keys`.
pub fn open(keys: &[SealKey], aad: &str, sealed: &str) -> Result<String, OpenError> {
    let rest = sealed.strip_prefix(PREFIX).ok_or(OpenError::NotSealed)?;
    let (id, data) = rest.split_once(':').ok_or(OpenError::Malformed)?;
    let raw = STANDARD.decode(data).map_err(|_| OpenError::Malformed)?;
    if raw.len() < NONCE_LEN + TAG_LEN {
        return Err(OpenError::Malformed);
    }
    let key = keys
        .iter()
        .find(|k| k.id == id)
        .ok_or_else(|| OpenError::UnknownKey(id.to_string()))?;
    let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
    let plain = key
        .cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| OpenError::Rejected)?;
    String::from_utf8(plain).map_err(|_| OpenError::Rejected)
}

/// The associated data of each secret: its kind, owner and field. Names and
/// keys are letters, digits, `-` and `_`, so `/` cannot be forged into them.
fn app_secret_aad(name: &str, key: &str) -> String {
    format!("pylon/app/{name}/{key}/secret")
}

fn app_code_aad(name: &str, key: &str, index: usize) -> String {
    format!("pylon/app/{name}/{key}/code/{index}")
}

fn account_sk_aad(name: &str, ak: &str) -> String {
    format!("pylon/account/{name}/{ak}/sk")
}

/// Whether the plan holds any secret (apps or accounts).
pub fn has_secrets(plan: &Plan) -> bool {
    !plan.apps.is_empty() || !plan.accounts.is_empty()
}

/// Seals every secret of `plan` in place, each with a nonce from `nonce`.
pub fn seal_plan<E>(
    plan: &mut Plan,
    key: &SealKey,
    mut nonce: impl FnMut() -> Result<[u8; NONCE_LEN], E>,
) -> Result<(), E> {
    for app in &mut plan.apps {
        app.secret = key.seal(nonce()?, &app_secret_aad(&app.name, &app.key), &app.secret);
        for (i, code) in app.codes.iter_mut().enumerate() {
            *code = key.seal(nonce()?, &app_code_aad(&app.name, &app.key, i), code);
        }
    }
    for acc in &mut plan.accounts {
        acc.sk = key.seal(nonce()?, &account_sk_aad(&acc.name, &acc.ak), &acc.sk);
    }
    Ok(())
}

/// Opens every secret of `plan` in place. Every secret must be sealed: a
/// plan with a plaintext secret is refused like a tampered one.
pub fn open_plan(plan: &mut Plan, keys: &[SealKey]) -> Result<(), String> {
    let why = |owner: &str, field: &str, e: OpenError| {
        let reason = match e {
            OpenError::NotSealed => "is not sealed; compile the plan with a seal key".into(),
            OpenError::Malformed => "is not a well-formed sealed value".into(),
            OpenError::UnknownKey(id) => format!(
                "is sealed with key {id}, which neither {KEY_ENV} nor {PREVIOUS_KEY_ENV} \
                 in Envoy's environment holds"
            ),
            OpenError::Rejected => {
                "does not open: tampered with, or sealed for another field".into()
            }
        };
        format!("{owner}: {field} {reason}")
    };
    for app in &mut plan.apps {
        let owner = format!("app {}", app.name);
        app.secret = open(keys, &app_secret_aad(&app.name, &app.key), &app.secret)
            .map_err(|e| why(&owner, "secret", e))?;
        for (i, code) in app.codes.iter_mut().enumerate() {
            *code = open(keys, &app_code_aad(&app.name, &app.key, i), code)
                .map_err(|e| why(&owner, &format!("codes[{i}]"), e))?;
        }
    }
    for acc in &mut plan.accounts {
        acc.sk = open(keys, &account_sk_aad(&acc.name, &acc.ak), &acc.sk)
            .map_err(|e| why(&format!("account {}", acc.name), "sk", e))?;
    }
    Ok(())
}

/// The keys named by [`KEY_ENV`] and [`PREVIOUS_KEY_ENV`], as `var` reads
/// them; unset ones are skipped, malformed ones are an error.
pub fn keys_from(var: impl Fn(&str) -> Option<String>) -> Result<Vec<SealKey>, String> {
    let mut keys = Vec::new();
    for name in [KEY_ENV, PREVIOUS_KEY_ENV] {
        if let Some(text) = var(name) {
            keys.push(SealKey::from_base64(&text).map_err(|e| format!("{name} {e}"))?);
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{AccountPlan, AppPlan, Plan};

    const SECRET: &str = "app-secret-0123456789";
    const CODE: &str = "app-code-0123456789abcdef";
    const SK: &str = "account-sk-0123456789";

    fn key(b: u8) -> SealKey {
        SealKey::from_bytes(&[b; 32])
    }

    /// Counts up, so every value gets its own nonce.
    fn nonces() -> impl FnMut() -> Result<[u8; 24], ()> {
        let mut n = 0u8;
        move || {
            n += 1;
            Ok([n; 24])
        }
    }

    fn plan() -> Plan {
        let mut p: Plan = serde_json::from_str(
            r#"{"version":1,"max_body_bytes":1,"stages":["RELEASE"],"groups":[]}"#,
        )
        .unwrap();
        let app = |name: &str, key: &str, secret: &str, codes: &[&str]| AppPlan {
            id: format!("id-{name}"),
            name: name.into(),
            key: key.into(),
            secret: secret.into(),
            codes: codes.iter().map(|c| c.to_string()).collect(),
        };
        p.apps = vec![
            app("web", "web-key-0001", SECRET, &[CODE]),
            app("batch", "batch-key-0002", "other-secret-98765", &[]),
        ];
        p.accounts = vec![AccountPlan {
            id: "acc".into(),
            name: "tenant".into(),
            ak: "TENANTAK0001".into(),
            sk: SK.into(),
        }];
        p
    }

    fn sealed(k: &SealKey) -> Plan {
        let mut p = plan();
        seal_plan(&mut p, k, nonces()).unwrap();
        p
    }

    #[test]
    fn seal_then_open_round_trips_and_hides_every_value() {
        let k = key(7);
        let mut p = sealed(&k);
        let text = serde_json::to_string(&p).unwrap();
        for secret in [SECRET, CODE, SK, "other-secret-98765"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(p.apps[0].secret.starts_with("pylon-sealed:v1:"));
        open_plan(&mut p, &[k]).unwrap();
        assert_eq!(p, plan());
    }

    #[test]
    fn each_value_gets_its_own_nonce() {
        let k = key(7);
        let a = k.seal([1; 24], "aad", SECRET);
        let b = k.seal([2; 24], "aad", SECRET);
        assert_ne!(a, b);
        assert_eq!(open(&[key(7)], "aad", &a).unwrap(), SECRET);
        assert_eq!(open(&[k], "aad", &b).unwrap(), SECRET);
    }

    #[test]
    fn a_tampered_value_is_refused() {
        let k = key(7);
        let mut p = sealed(&k);
        // Flip one bit of the ciphertext (last base64 digits = the tag).
        let s = &mut p.apps[0].secret;
        let (head, data) = s.rsplit_once(':').unwrap();
        let mut raw = STANDARD.decode(data).unwrap();
        raw[30] ^= 1;
        *s = format!("{head}:{}", STANDARD.encode(raw));
        let e = open_plan(&mut p, &[k]).unwrap_err();
        assert_eq!(
            e,
            "app web: secret does not open: tampered with, or sealed for another field"
        );
    }

    #[test]
    fn a_wrong_or_missing_key_is_refused_without_printing_anything_secret() {
        let mut p = sealed(&key(7));
        let e = open_plan(&mut p.clone(), &[key(8)]).unwrap_err();
        assert!(e.contains("is sealed with key"), "{e}");
        assert!(e.contains(key(7).id()) && e.contains(KEY_ENV), "{e}");
        let e2 = open_plan(&mut p, &[]).unwrap_err();
        assert_eq!(e, e2);
        // A key that claims the right id but is another key still fails.
        let mut forged = key(8);
        forged.id = key(7).id.clone();
        let mut p = sealed(&key(7));
        assert!(open_plan(&mut p, &[forged])
            .unwrap_err()
            .contains("does not open"));
    }

    #[test]
    fn sealed_values_cannot_be_swapped_between_apps_fields_or_accounts() {
        let k = key(7);
        let base = sealed(&k);
        // web's secret given to batch.
        let mut p = base.clone();
        p.apps[1].secret = base.apps[0].secret.clone();
        assert!(open_plan(&mut p, &[key(7)])
            .unwrap_err()
            .starts_with("app batch: secret does not open"));
        // web's AppCode used as its secret.
        let mut p = base.clone();
        p.apps[0].secret = base.apps[0].codes[0].clone();
        assert!(open_plan(&mut p, &[key(7)]).is_err());
        // An app's secret used as the account's SK.
        let mut p = base.clone();
        p.accounts[0].sk = base.apps[0].secret.clone();
        assert!(open_plan(&mut p, &[key(7)])
            .unwrap_err()
            .starts_with("account tenant: sk does not open"));
        // The same app renamed (or its AppKey changed) no longer opens.
        let mut p = base.clone();
        p.apps[0].key = "web-key-0009".into();
        assert!(open_plan(&mut p, &[k]).is_err());
    }

    #[test]
    fn a_plaintext_secret_is_refused() {
        let mut p = plan();
        let e = open_plan(&mut p, &[key(7)]).unwrap_err();
        assert_eq!(
            e,
            "app web: secret is not sealed; compile the plan with a seal key"
        );
        assert!(!e.contains(SECRET));
        let mut p = sealed(&key(7));
        p.apps[0].codes[0] = "pylon-sealed:v1:abc:%%%".into();
        assert!(open_plan(&mut p, &[key(7)])
            .unwrap_err()
            .contains("codes[0] is not a well-formed"));
    }

    #[test]
    fn the_previous_key_still_opens_during_a_rotation() {
        let (old, new) = (key(1), key(2));
        let mut p = sealed(&old);
        open_plan(&mut p, &[new.clone(), old]).unwrap();
        let mut p = sealed(&new);
        open_plan(&mut p, &[new]).unwrap();
    }

    #[test]
    fn keys_come_from_the_environment_variables() {
        let b64 = STANDARD.encode([7u8; 32]);
        let keys = keys_from(|n| (n == KEY_ENV).then(|| format!("{b64}\n"))).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].id(), key(7).id());
        assert!(keys_from(|_| None).unwrap().is_empty());
        let e = keys_from(|n| (n == PREVIOUS_KEY_ENV).then(|| "c2hvcnQ=".into())).unwrap_err();
        assert_eq!(
            e,
            "PYLON_SEAL_KEY_PREVIOUS must be 32 bytes, base64-encoded"
        );
        let e = keys_from(|_| Some("not base64!".into())).unwrap_err();
        assert_eq!(e, "PYLON_SEAL_KEY is not base64");
        assert_eq!(format!("{:?}", key(7)), format!("SealKey({})", key(7).id()));
    }
}
