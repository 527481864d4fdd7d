//! The texts the service sends to people: security incident notices and announcements
//! (policy §8.3, PIPL Art. 57), service cessation notices (policy §8.6, PIPL Art. 47),
//! cross-border transfer notices (policy §8.5, PIPL Art. 39), misuse lock notices
//! (policy §8.7), policy-change notices (policy §X, PIPL Art. 14 para. 2) and the one-time
//! codes of data subject requests (PIPL Art. 50).
//!
//! Every function is pure: it renders a [`Rendered`] plain-text subject and body in one
//! [`Lang`], from values the caller supplies. Free text (what happened, measures, remedies) is
//! written by the security team and is not PI; the only per-person values are a masked account
//! hint and a one-time code in [`dsr_code`]. Times are unix seconds, rendered in UTC as
//! `YYYY-MM-DD HH:MM UTC` so one text is right wherever it is read. Empty inputs render a
//! placeholder (`（暂无）` / `(none yet)`); nothing here panics.

use time::OffsetDateTime;

/// The language of a notice: Simplified Chinese (the default: the service is run in mainland
/// China, policy §4.1) or English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// Simplified Chinese as written in mainland China (`zh-CN`).
    #[default]
    ZhCn,
    /// English (`en`).
    En,
}

impl Lang {
    /// The language named by a BCP 47 tag, case-insensitive: `zh`, `zh-CN`, `zh_CN`,
    /// `zh-Hans`, `zh-Hans-CN` … → [`Lang::ZhCn`]; `en`, `en-US`, `en-GB`, `en_US` … →
    /// [`Lang::En`]. Surrounding whitespace is ignored; any other tag (including `zh-TW` and
    /// `zh-Hant`, which are not Simplified Chinese) is `None`, so the caller picks the
    /// default.
    #[must_use]
    pub fn parse(tag: &str) -> Option<Lang> {
        let tag = tag.trim().to_ascii_lowercase().replace('_', "-");
        let mut parts = tag.split('-');
        match parts.next()? {
            "en" => Some(Lang::En),
            "zh" => {
                let rest: Vec<&str> = parts.collect();
                let traditional = rest
                    .iter()
                    .any(|p| matches!(*p, "hant" | "tw" | "hk" | "mo"));
                (!traditional).then_some(Lang::ZhCn)
            }
            _ => None,
        }
    }

    /// The tag: `zh-CN` or `en`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }
}

/// A rendered message: a one-line `subject` (the e-mail subject, a push title, the heading of
/// a letter or an announcement) and a plain-text `body` of `\n`-terminated lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, no newline.
    pub subject: String,
    /// Plain text, lines ending in `\n`.
    pub body: String,
}

/// What a security incident notice says (PIPL Art. 57 para. 1; policy §8.3). The free text is
/// written by the security team for everyone affected; it must not hold any person's PI.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncidentNotice {
    /// The incident's id, quoted as the reference.
    pub incident_id: String,
    /// What happened and its cause (Art. 57(1): 原因).
    pub what_happened: String,
    /// When it happened (or began): unix seconds, UTC.
    pub occurred_at: i64,
    /// When we found out: unix seconds, UTC.
    pub discovered_at: i64,
    /// Keys of the policy categories of PI involved, e.g. `user.contact.mobile`
    /// (Art. 57(1): 信息种类); rendered through the caller's `category_name`.
    pub categories: Vec<String>,
    /// The harm it may cause (Art. 57(1): 可能造成的危害).
    pub possible_impact: String,
    /// Remedial measures already taken (Art. 57(2); policy §8.3).
    pub measures_taken: String,
    /// Measures we will take (policy §8.3: "taken or will take").
    pub measures_planned: String,
    /// What the person can do to reduce the harm (Art. 57(2); policy §8.3).
    pub self_help: String,
    /// The remedies offered to the person (policy §8.3: 补救措施).
    pub remedies: String,
    /// How to reach us (Art. 57(3)): the DPO contact of the policy's `[incident]` table.
    pub contact: String,
}

/// What a service cessation notice says (policy §8.6; PIPL Art. 47 para. 1(2)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CessationNotice {
    /// The cessation's id, quoted as the reference.
    pub cessation_id: String,
    /// When the products and services stop, and collection with them: unix seconds, UTC.
    pub effective_at: i64,
    /// From when PI is deleted or anonymized: unix seconds, UTC.
    pub deletion_from: i64,
    /// How to reach us.
    pub contact: String,
}

/// `YYYY-MM-DD HH:MM UTC` for unix seconds; a time outside the calendar `time` supports
/// (beyond ±9999 years) is written as `@<seconds>` rather than failing.
#[must_use]
pub(crate) fn utc_minute(t: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(t) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute()
        ),
        Err(_) => format!("@{t}"),
    }
}

/// The text, or the language's placeholder when it is blank.
fn or_none(lang: Lang, s: &str) -> &str {
    if !s.trim().is_empty() {
        return s.trim();
    }
    match lang {
        Lang::ZhCn => "（暂无）",
        Lang::En => "(none yet)",
    }
}

/// The categories' display names joined in the language's way; a placeholder when none.
fn category_list(lang: Lang, keys: &[String], name: &dyn Fn(&str) -> String) -> String {
    if keys.is_empty() {
        return match lang {
            Lang::ZhCn => "（正在核实）".to_owned(),
            Lang::En => "(being established)".to_owned(),
        };
    }
    let names: Vec<String> = keys.iter().map(|k| name(k)).collect();
    match lang {
        Lang::ZhCn => names.join("、"),
        Lang::En => names.join(", "),
    }
}

/// The seven numbered items of PIPL Art. 57 para. 1, in order, shared by the notice and the
/// announcement.
fn incident_items(lang: Lang, n: &IncidentNotice, name: &dyn Fn(&str) -> String) -> String {
    let cats = category_list(lang, &n.categories, name);
    let occurred = utc_minute(n.occurred_at);
    let discovered = utc_minute(n.discovered_at);
    match lang {
        Lang::ZhCn => format!(
            "一、涉及的个人信息种类：{cats}\n\
             二、事件经过及原因：{what}（发生时间：{occurred}；发现时间：{discovered}）\n\
             三、可能造成的危害：{impact}\n\
             四、我们已采取的补救措施：{taken}\n\
             \u{3000}\u{3000}我们将要采取的措施：{planned}\n\
             五、您可以采取的减轻危害的措施：{self_help}\n\
             六、我们为您提供的补救措施：{remedies}\n\
             七、联系方式：{contact}\n",
            what = or_none(lang, &n.what_happened),
            impact = or_none(lang, &n.possible_impact),
            taken = or_none(lang, &n.measures_taken),
            planned = or_none(lang, &n.measures_planned),
            self_help = or_none(lang, &n.self_help),
            remedies = or_none(lang, &n.remedies),
            contact = or_none(lang, &n.contact),
        ),
        Lang::En => format!(
            "1. Personal information involved: {cats}\n\
             2. What happened and why: {what} (occurred {occurred}; discovered {discovered})\n\
             3. Possible impact: {impact}\n\
             4. What we have done: {taken}\n\
             \x20  What we will do: {planned}\n\
             5. What you can do to reduce the risk: {self_help}\n\
             6. Remedies available to you: {remedies}\n\
             7. How to contact us: {contact}\n",
            what = or_none(lang, &n.what_happened),
            impact = or_none(lang, &n.possible_impact),
            taken = or_none(lang, &n.measures_taken),
            planned = or_none(lang, &n.measures_planned),
            self_help = or_none(lang, &n.self_help),
            remedies = or_none(lang, &n.remedies),
            contact = or_none(lang, &n.contact),
        ),
    }
}

/// The footer line of incident notices and announcements.
const INCIDENT_SOURCE: &str = "PIPL Art. 57 / policy §8.3";

/// The notice sent to each affected person, one by one, by e-mail, letter, SMS or push
/// (policy §8.3). The body gives, in the order of PIPL Art. 57 para. 1: the categories of PI
/// involved, what happened and why with when it occurred and was discovered
/// (`YYYY-MM-DD HH:MM UTC`), the possible harm, the remedial measures taken and planned, what
/// the person can do to reduce the harm, the remedies offered, and the contact; then the
/// reference and a footer citing `PIPL Art. 57 / policy §8.3`.
///
/// `category_name` maps a category key to the name shown (the caller's policy lookup, in
/// `lang`); it is called once per key. The text holds no per-person data, so the same
/// rendering serves every recipient.
#[must_use]
pub fn incident_notice(
    lang: Lang,
    n: &IncidentNotice,
    category_name: &dyn Fn(&str) -> String,
) -> Rendered {
    let items = incident_items(lang, n, category_name);
    let id = or_none(lang, &n.incident_id);
    match lang {
        Lang::ZhCn => Rendered {
            subject: format!("个人信息安全事件告知书（编号 {id}）"),
            body: format!(
                "尊敬的用户：\n\n\
                 我们很遗憾地通知您，我们发生了一起涉及您个人信息的安全事件。\
                 根据《中华人民共和国个人信息保护法》第五十七条，现将有关情况告知如下：\n\n\
                 {items}\n\
                 对此给您带来的困扰，我们深表歉意。\n\
                 事件编号：{id}\n\
                 依据：《个人信息保护法》第五十七条、隐私政策第8.3条（{INCIDENT_SOURCE}）\n"
            ),
        },
        Lang::En => Rendered {
            subject: format!("Notice of a personal information security incident (ref. {id})"),
            body: format!(
                "Dear user,\n\n\
                 We regret to inform you of a security incident involving your personal \
                 information. As Article 57 of the Personal Information Protection Law of the \
                 People's Republic of China requires, here is what happened and what it means \
                 for you.\n\n\
                 {items}\n\
                 We sincerely apologise for the concern this may cause you.\n\
                 Reference: {id}\n\
                 Under: {INCIDENT_SOURCE}\n"
            ),
        },
    }
}

/// The public announcement (公告) made instead of individual notices when notifying every
/// affected person one by one is impracticable (policy §8.3: "if it is difficult to inform the
/// user information subject one by one, we will … make an announcement"; the policy's
/// `[incident] announcement_threshold`). It carries the same PIPL Art. 57 contents as
/// [`incident_notice`], addressed to the public, with the number of people `affected`, why
/// individual notice was impracticable, and no per-person data.
#[must_use]
pub fn incident_announcement(
    lang: Lang,
    n: &IncidentNotice,
    affected: u64,
    category_name: &dyn Fn(&str) -> String,
) -> Rendered {
    let items = incident_items(lang, n, category_name);
    let id = or_none(lang, &n.incident_id);
    let people = if affected == 1 {
        "1 person".to_owned()
    } else {
        format!("{affected} people")
    };
    match lang {
        Lang::ZhCn => Rendered {
            subject: format!("关于个人信息安全事件的公告（编号 {id}）"),
            body: format!(
                "各位用户：\n\n\
                 我们发生了一起个人信息安全事件，涉及 {affected} 名用户的个人信息。\
                 由于部分受影响用户无法逐一告知（我们未留存其联系方式，或人数过多难以及时逐一送达），\
                 根据《中华人民共和国个人信息保护法》第五十七条及隐私政策第8.3条，\
                 我们以公告方式告知如下：\n\n\
                 {items}\n\
                 如您不确定自己是否受到影响，请通过上述联系方式向我们查询。\n\
                 事件编号：{id}\n\
                 依据：《个人信息保护法》第五十七条、隐私政策第8.3条（{INCIDENT_SOURCE}）\n"
            ),
        },
        Lang::En => Rendered {
            subject: format!(
                "Announcement of a personal information security incident (ref. {id})"
            ),
            body: format!(
                "To our users,\n\n\
                 We have had a security incident involving the personal information of \
                 {people}. Notifying some of them individually is impracticable (we hold no \
                 contact details for them, or there are too many to reach each in good time), so, \
                 as Article 57 of the Personal \
                 Information Protection Law of the People's Republic of China and section 8.3 \
                 of our privacy policy provide, we are making this public announcement.\n\n\
                 {items}\n\
                 If you are unsure whether you are affected, please ask us using the contact \
                 above.\n\
                 Reference: {id}\n\
                 Under: {INCIDENT_SOURCE}\n"
            ),
        },
    }
}

/// The footer of cessation notices and announcements.
const CESSATION_SOURCE: &str = "PIPL Art. 47 / policy §8.6";

fn cessation_items(lang: Lang, c: &CessationNotice) -> String {
    let effective = utc_minute(c.effective_at);
    let deletion = utc_minute(c.deletion_from);
    match lang {
        Lang::ZhCn => format!(
            "一、相关产品和服务将于 {effective} 停止运营。\n\
             二、自该时间起，我们将停止收集个人信息。\n\
             三、自 {deletion} 起，我们将删除或匿名化处理所持有的个人信息；\
             法律、行政法规规定的保存期限未届满的个人信息除外，\
             对其我们仅作存储并采取必要的安全保护措施，期满后删除或匿名化处理。\n\
             四、在此期间，我们将继续采取合理措施保障个人信息安全。\n\
             五、联系方式：{contact}\n",
            contact = or_none(lang, &c.contact),
        ),
        Lang::En => format!(
            "1. Our products and services will stop operating at {effective}.\n\
             2. From then on we will stop collecting personal information.\n\
             3. From {deletion} we will delete or anonymize the personal information we hold, \
             except what laws or administrative regulations require us to keep for a period \
             not yet ended; that we will only store, with the necessary security measures, \
             and delete or anonymize when the period ends.\n\
             4. Until then we will keep taking reasonable measures to protect personal \
             information.\n\
             5. How to contact us: {contact}\n",
            contact = or_none(lang, &c.contact),
        ),
    }
}

/// The notice of cessation of operation delivered to each user (policy §8.6: "notified to the
/// user in the form of a one-by-one delivery or announcement"): the services stop at
/// `effective_at`, collection stops with them, PI is deleted or anonymized from
/// `deletion_from` except what the law requires us to keep (PIPL Art. 47 para. 1(2) and
/// para. 2), and the contact; footer `PIPL Art. 47 / policy §8.6`.
#[must_use]
pub fn cessation_notice(lang: Lang, c: &CessationNotice) -> Rendered {
    let items = cessation_items(lang, c);
    let id = or_none(lang, &c.cessation_id);
    match lang {
        Lang::ZhCn => Rendered {
            subject: format!("停止运营通知（编号 {id}）"),
            body: format!(
                "尊敬的用户：\n\n\
                 感谢您一直以来的信任与支持。我们决定停止运营相关产品和服务，\
                 现将您个人信息的处理安排告知如下：\n\n\
                 {items}\n\
                 编号：{id}\n\
                 依据：《个人信息保护法》第四十七条、隐私政策第8.6条（{CESSATION_SOURCE}）\n"
            ),
        },
        Lang::En => Rendered {
            subject: format!("Notice of cessation of our services (ref. {id})"),
            body: format!(
                "Dear user,\n\n\
                 Thank you for your trust. We have decided to stop operating our products and \
                 services. This is what will happen to your personal information.\n\n\
                 {items}\n\
                 Reference: {id}\n\
                 Under: {CESSATION_SOURCE}\n"
            ),
        },
    }
}

/// The public announcement of cessation of operation (policy §8.6: "… or announcement"): the
/// contents of [`cessation_notice`] addressed to the public.
#[must_use]
pub fn cessation_announcement(lang: Lang, c: &CessationNotice) -> Rendered {
    let items = cessation_items(lang, c);
    let id = or_none(lang, &c.cessation_id);
    match lang {
        Lang::ZhCn => Rendered {
            subject: format!("关于停止运营的公告（编号 {id}）"),
            body: format!(
                "各位用户：\n\n\
                 我们决定停止运营相关产品和服务，现就用户个人信息的处理安排公告如下：\n\n\
                 {items}\n\
                 编号：{id}\n\
                 依据：《个人信息保护法》第四十七条、隐私政策第8.6条（{CESSATION_SOURCE}）\n"
            ),
        },
        Lang::En => Rendered {
            subject: format!("Announcement: our services are ceasing operation (ref. {id})"),
            body: format!(
                "To our users,\n\n\
                 We have decided to stop operating our products and services. This is what \
                 will happen to the personal information we hold.\n\n\
                 {items}\n\
                 Reference: {id}\n\
                 Under: {CESSATION_SOURCE}\n"
            ),
        },
    }
}

/// The notice asking for separate consent to a cross-border transfer (policy §8.5; PIPL
/// Art. 39): the foreign recipient's name (`recipient_name`, in `recipient_region`: a
/// lower-case ISO 3166-1 alpha-2 code such as `sg`) and contact method (`contact`), the
/// purpose (`purpose_name`), the method of processing (only what the purpose needs), the
/// categories of PI (keys, shown through `category_name`), and how to exercise the rights of
/// PIPL Chapter IV against the foreign recipient; footer `PIPL Art. 39 / policy §8.5`.
#[must_use]
pub fn cross_border_notice(
    lang: Lang,
    recipient_name: &str,
    recipient_region: &str,
    purpose_name: &str,
    categories: &[String],
    contact: &str,
    category_name: &dyn Fn(&str) -> String,
) -> Rendered {
    let cats = category_list(lang, categories, category_name);
    let name = or_none(lang, recipient_name);
    let region = or_none(lang, recipient_region);
    let purpose = or_none(lang, purpose_name);
    let contact = or_none(lang, contact);
    match lang {
        Lang::ZhCn => Rendered {
            subject: format!("个人信息出境告知（接收方：{name}）"),
            body: format!(
                "尊敬的用户：\n\n\
                 因业务需要，我们拟向境外提供您的个人信息。\
                 根据《中华人民共和国个人信息保护法》第三十九条，现告知如下，\
                 并征求您的单独同意：\n\n\
                 一、境外接收方名称：{name}（所在国家或地区：{region}）\n\
                 二、境外接收方联系方式：{contact}\n\
                 三、处理目的：{purpose}\n\
                 四、处理方式：境外接收方仅为上述目的、以实现该目的所必需的方式（存储、使用）处理\n\
                 五、个人信息种类：{cats}\n\
                 六、行使权利的方式和程序：您可以通过上述联系方式向境外接收方行使\
                 《个人信息保护法》规定的查阅、复制、更正、补充、删除等权利，\
                 也可以通过我们的联系方式提出，我们将协助您向境外接收方行使权利。\n\n\
                 未经您的单独同意，我们不会向境外提供您的个人信息。\n\
                 依据：《个人信息保护法》第三十九条、隐私政策第8.5条（PIPL Art. 39 / policy §8.5）\n"
            ),
        },
        Lang::En => Rendered {
            subject: format!("Transfer of your personal information abroad (recipient: {name})"),
            body: format!(
                "Dear user,\n\n\
                 For business needs we intend to provide your personal information to a \
                 recipient outside mainland China. As Article 39 of the Personal Information \
                 Protection Law of the People's Republic of China requires, we tell you the \
                 following and ask for your separate consent.\n\n\
                 1. Foreign recipient: {name} (country or region: {region})\n\
                 2. The recipient's contact: {contact}\n\
                 3. Purpose: {purpose}\n\
                 4. Method: the recipient processes it only for this purpose and only as the \
                 purpose needs (storage and use)\n\
                 5. Personal information involved: {cats}\n\
                 6. Your rights: you may exercise your rights under the law (access, copy, \
                 correction, completion, deletion and the others) against the foreign \
                 recipient through the contact above, or through us, and we will help you \
                 exercise them.\n\n\
                 We will not transfer your personal information abroad without your separate \
                 consent.\n\
                 Under: PIPL Art. 39 / policy §8.5\n"
            ),
        },
    }
}

/// The notice to a person whose report of misuse (policy §8.7: the account, password or other
/// information "illegally used by others or … used abnormally") we received: access to their
/// PI is locked while a security case (`case_id`) is investigated, what to do meanwhile, and
/// the `contact`; footer `policy §8.7`.
#[must_use]
pub fn misuse_lock_notice(lang: Lang, case_id: &str, contact: &str) -> Rendered {
    let case_id = or_none(lang, case_id);
    let contact = or_none(lang, contact);
    match lang {
        Lang::ZhCn => Rendered {
            subject: format!("我们已收到您的账号异常使用报告（案件编号 {case_id}）"),
            body: format!(
                "尊敬的用户：\n\n\
                 我们已收到您关于账号、密码或其他信息被他人非法使用或异常使用的报告。\
                 为保护您的信息安全，我们已锁定对您个人信息的访问：\
                 调查期间，仅安全团队可以访问。\
                 我们已立案调查，案件编号：{case_id}。\n\n\
                 建议您尽快修改密码，并妥善保管账号、密码等信息。\
                 如需补充情况或有任何疑问，请联系：{contact}\n\n\
                 依据：隐私政策第8.7条（policy §8.7）\n"
            ),
        },
        Lang::En => Rendered {
            subject: format!("We received your report of misuse of your account (case {case_id})"),
            body: format!(
                "Dear user,\n\n\
                 We received your report that your account, password or other information has \
                 been used illegally by others or abnormally. To protect your information we \
                 have locked access to your personal information: while we investigate, only \
                 our security team can access it. We opened security case {case_id}.\n\n\
                 Please change your password as soon as you can and keep your account details \
                 safe. To tell us more, or with any question, contact: {contact}\n\n\
                 Under: policy §8.7\n"
            ),
        },
    }
}

/// What a policy-change notice says (policy §X: "if we make material changes … we may also send
/// you a notice of the change"; PIPL Art. 14 para. 2: a change of purpose or manner of
/// processing needs consent again). Holds no per-person data beyond which of the person's
/// purposes are affected.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyChangeNotice {
    /// The new policy version, e.g. `2025-06-01`.
    pub version: String,
    /// When it was published: `YYYY-MM-DD`.
    pub published: String,
    /// The summaries of its material changes that touch the person's consents, in order.
    pub changes: Vec<String>,
    /// The names of the person's consented purposes the changes touch.
    pub purposes: Vec<String>,
    /// How to reach us.
    pub contact: String,
}

/// The notice of a material policy change, sent to each person whose consent it affects:
/// the new version and its date, the material changes, the purposes affected, that processing
/// for them on the earlier consent has stopped until the person consents again (and that not
/// consenting is their right), and the contact; footer `PIPL Art. 14 / policy §X`.
#[must_use]
pub fn policy_change_notice(lang: Lang, n: &PolicyChangeNotice) -> Rendered {
    let version = or_none(lang, &n.version);
    let published = or_none(lang, &n.published);
    let contact = or_none(lang, &n.contact);
    let list = |items: &[String], sep: &str| -> String {
        let shown: Vec<&str> = items
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        if shown.is_empty() {
            or_none(lang, "").to_owned()
        } else {
            shown.join(sep)
        }
    };
    match lang {
        Lang::ZhCn => Rendered {
            subject: format!("隐私政策变更通知（版本 {version}）"),
            body: format!(
                "尊敬的用户：\n\n\
                 我们于 {published} 发布了隐私政策的新版本（版本 {version}），\
                 其中的重大变更涉及您曾同意的个人信息处理。\
                 根据《中华人民共和国个人信息保护法》第十四条第二款，\
                 处理目的、处理方式或者处理的个人信息种类发生变更的，应当重新取得您的同意。\n\n\
                 一、重大变更内容：{changes}\n\
                 二、涉及的处理目的：{purposes}\n\
                 三、在您重新同意之前，我们不再基于您此前的同意为上述目的处理您的个人信息。\
                 您可以阅读新版本后选择是否重新同意；不同意不影响您使用其他不依赖该同意的服务。\n\
                 四、联系方式：{contact}\n\n\
                 依据：《个人信息保护法》第十四条、隐私政策第十条（PIPL Art. 14 / policy §X）\n",
                changes = list(&n.changes, "；"),
                purposes = list(&n.purposes, "、"),
            ),
        },
        Lang::En => Rendered {
            subject: format!("Our privacy policy has changed (version {version})"),
            body: format!(
                "Dear user,\n\n\
                 On {published} we published a new version of our privacy policy (version \
                 {version}). It makes material changes to processing you had consented to. As \
                 Article 14(2) of the Personal Information Protection Law of the People's \
                 Republic of China requires, when the purpose or manner of processing, or the \
                 kinds of personal information processed, change, we must ask for your consent \
                 again.\n\n\
                 1. What changed: {changes}\n\
                 2. Purposes affected: {purposes}\n\
                 3. Until you consent again we no longer process your personal information for \
                 these purposes on your earlier consent. Read the new version and choose \
                 whether to consent; not consenting does not affect services that do not rely \
                 on this consent.\n\
                 4. How to contact us: {contact}\n\n\
                 Under: PIPL Art. 14 / policy §X\n",
                changes = list(&n.changes, "; "),
                purposes = list(&n.purposes, ", "),
            ),
        },
    }
}

/// The name of a data subject request kind (as `DsrKind::as_str` spells it) in `lang`; an
/// unknown kind is shown as given.
fn dsr_kind_name(lang: Lang, kind: &str) -> &str {
    match (lang, kind) {
        (Lang::ZhCn, "access") => "查阅",
        (Lang::ZhCn, "copy") => "复制",
        (Lang::ZhCn, "correction") => "更正、补充",
        (Lang::ZhCn, "deletion") => "删除",
        (Lang::ZhCn, "withdrawal") => "撤回同意",
        (Lang::ZhCn, "cancellation") => "注销账号",
        (Lang::ZhCn, "explanation") => "解释说明处理规则",
        (Lang::ZhCn, "misuse_report") => "报告账号异常使用",
        (Lang::ZhCn, "inquiry") => "咨询或投诉",
        (Lang::ZhCn, "sign_in") => "登录个人信息中心",
        (Lang::ZhCn, "guardian_sign_in") => {
            "监护人登录个人信息中心，代未满十四周岁的未成年人管理同意"
        }
        (Lang::En, "guardian_sign_in") => {
            "guardian sign-in to the privacy center, to manage a minor's consents"
        }
        (Lang::En, "misuse_report") => "report of misuse",
        (Lang::En, "inquiry") => "question or complaint",
        (Lang::En, "sign_in") => "sign-in to the privacy center",
        (Lang::En, "withdrawal") => "withdrawal of consent",
        (Lang::En, "cancellation") => "account cancellation",
        (Lang::En, "explanation") => "explanation of the processing rules",
        _ => kind,
    }
}

/// The one-time code that verifies the requester of a data subject request (PIPL Art. 50:
/// requests are accepted through a convenient channel after verifying identity): `kind` as
/// `DsrKind::as_str` spells it, a masked `account_hint` (e.g. `138****0000`; `-` when none),
/// the 6-digit `code`, how many minutes it stays valid (`ttl_minutes`), the `request_id`, and
/// what to do if the person made no request.
#[must_use]
pub fn dsr_code(
    lang: Lang,
    kind: &str,
    account_hint: &str,
    code: &str,
    ttl_minutes: u64,
    request_id: &str,
) -> Rendered {
    let kind = dsr_kind_name(lang, kind);
    let account = if account_hint.trim().is_empty() {
        "-"
    } else {
        account_hint.trim()
    };
    match lang {
        Lang::ZhCn => Rendered {
            subject: "个人信息请求验证码".to_owned(),
            body: format!(
                "您的个人信息请求（{kind}，账号 {account}）验证码：{code}，\
                 {ttl_minutes} 分钟内有效。\n\
                 请求编号：{request_id}\n\
                 如非本人操作，请忽略本消息。\n"
            ),
        },
        Lang::En => Rendered {
            subject: "Your verification code".to_owned(),
            body: format!(
                "Your verification code is {code} (personal information request: {kind}, \
                 account {account}). It expires in {ttl_minutes} minutes.\n\
                 Request: {request_id}\n\
                 If you did not make this request, ignore this message.\n"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LANGS: [Lang; 2] = [Lang::ZhCn, Lang::En];

    fn names(key: &str) -> String {
        match key {
            "user.contact.mobile" => "手机号码 / mobile".to_owned(),
            other => format!("<{other}>"),
        }
    }

    fn sample() -> IncidentNotice {
        IncidentNotice {
            incident_id: "inc-7".into(),
            what_happened: "WHAT".into(),
            occurred_at: 1_735_689_600,   // 2025-01-01 00:00 UTC
            discovered_at: 1_735_727_400, // 2025-01-01 10:30 UTC
            categories: vec!["user.contact.mobile".into(), "user.contact.email".into()],
            possible_impact: "IMPACT".into(),
            measures_taken: "TAKEN".into(),
            measures_planned: "PLANNED".into(),
            self_help: "SELFHELP".into(),
            remedies: "REMEDIES".into(),
            contact: "CONTACT".into(),
        }
    }

    fn in_order(body: &str, parts: &[&str]) {
        let mut at = 0;
        for p in parts {
            match body[at..].find(p) {
                Some(i) => at += i + p.len(),
                None => panic!("`{p}` missing or out of order in:\n{body}"),
            }
        }
    }

    #[test]
    fn lang_tags_parse_case_insensitively() {
        for t in [
            "zh-CN",
            "zh",
            "zh-cn",
            "ZH_cn",
            "zh-Hans",
            "zh-Hans-CN",
            " zh ",
        ] {
            assert_eq!(Lang::parse(t), Some(Lang::ZhCn), "{t}");
        }
        for t in ["en", "en-US", "EN-gb", "en_us"] {
            assert_eq!(Lang::parse(t), Some(Lang::En), "{t}");
        }
        for t in ["", "fr", "zh-TW", "zh-Hant", "english", "-"] {
            assert_eq!(Lang::parse(t), None, "{t}");
        }
        assert_eq!(Lang::default(), Lang::ZhCn);
        assert_eq!(Lang::ZhCn.as_str(), "zh-CN");
        assert_eq!(Lang::En.as_str(), "en");
        for l in LANGS {
            assert_eq!(Lang::parse(l.as_str()), Some(l));
        }
    }

    #[test]
    fn times_render_as_utc_minutes() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_minute(1_735_727_459), "2025-01-01 10:30 UTC");
        assert_eq!(utc_minute(i64::MAX), format!("@{}", i64::MAX));
        assert_eq!(utc_minute(i64::MIN), format!("@{}", i64::MIN));
    }

    #[test]
    fn incident_notice_has_the_art_57_contents_in_order() {
        let n = sample();
        let zh = incident_notice(Lang::ZhCn, &n, &names);
        assert!(zh.subject.contains("个人信息安全事件告知书"));
        assert!(zh.subject.contains("inc-7"));
        in_order(
            &zh.body,
            &[
                "个人信息种类",
                "手机号码 / mobile、<user.contact.email>",
                "WHAT",
                "2025-01-01 00:00 UTC",
                "2025-01-01 10:30 UTC",
                "可能造成的危害：IMPACT",
                "TAKEN",
                "PLANNED",
                "SELFHELP",
                "REMEDIES",
                "CONTACT",
                "PIPL Art. 57 / policy §8.3",
            ],
        );
        let en = incident_notice(Lang::En, &n, &names);
        assert!(en.subject.contains("security incident"));
        in_order(
            &en.body,
            &[
                "Personal information involved",
                "手机号码 / mobile, <user.contact.email>",
                "WHAT",
                "occurred 2025-01-01 00:00 UTC",
                "discovered 2025-01-01 10:30 UTC",
                "Possible impact: IMPACT",
                "What we have done: TAKEN",
                "What we will do: PLANNED",
                "reduce the risk: SELFHELP",
                "Remedies available to you: REMEDIES",
                "contact us: CONTACT",
                "PIPL Art. 57 / policy §8.3",
            ],
        );
        assert!(!en.body.contains('一'), "no Chinese numbering in English");
    }

    #[test]
    fn the_announcement_has_the_count_the_reason_and_the_same_contents() {
        let n = sample();
        let zh = incident_announcement(Lang::ZhCn, &n, 1_234_567, &names);
        assert!(zh.subject.contains("公告"));
        in_order(
            &zh.body,
            &[
                "1234567",
                "逐一告知",
                "个人信息种类",
                "IMPACT",
                "REMEDIES",
                "CONTACT",
            ],
        );
        assert!(zh.body.contains("PIPL Art. 57 / policy §8.3"));
        let en = incident_announcement(Lang::En, &n, 1_234_567, &names);
        assert!(en.subject.contains("Announcement"));
        in_order(
            &en.body,
            &[
                "1234567 people",
                "impracticable",
                "involved",
                "IMPACT",
                "REMEDIES",
                "CONTACT",
            ],
        );
        assert!(
            !en.body.contains("Dear user"),
            "no addressee in an announcement"
        );
    }

    #[test]
    fn cessation_texts_say_stop_collecting_delete_or_anonymize_and_contact() {
        let c = CessationNotice {
            cessation_id: "ces-1".into(),
            effective_at: 1_767_225_600,  // 2026-01-01 00:00 UTC
            deletion_from: 1_769_904_000, // 2026-02-01 00:00 UTC
            contact: "CONTACT".into(),
        };
        for r in [
            cessation_notice(Lang::ZhCn, &c),
            cessation_announcement(Lang::ZhCn, &c),
        ] {
            in_order(
                &r.body,
                &[
                    "2026-01-01 00:00 UTC",
                    "停止收集",
                    "2026-02-01 00:00 UTC",
                    "删除或匿名化",
                    "保存期限",
                    "CONTACT",
                    "PIPL Art. 47 / policy §8.6",
                ],
            );
        }
        for r in [
            cessation_notice(Lang::En, &c),
            cessation_announcement(Lang::En, &c),
        ] {
            in_order(
                &r.body,
                &[
                    "2026-01-01 00:00 UTC",
                    "stop collecting",
                    "2026-02-01 00:00 UTC",
                    "delete or anonymize",
                    "require us to keep",
                    "CONTACT",
                    "PIPL Art. 47 / policy §8.6",
                ],
            );
        }
        assert!(cessation_announcement(Lang::ZhCn, &c)
            .subject
            .contains("公告"));
        assert!(cessation_notice(Lang::ZhCn, &c)
            .subject
            .contains("停止运营通知"));
    }

    #[test]
    fn cross_border_notice_has_the_art_39_contents() {
        let cats = vec!["user.contact.mobile".to_owned()];
        let zh = cross_border_notice(
            Lang::ZhCn,
            "Acme Pte",
            "sg",
            "客服",
            &cats,
            "dpo@acme.sg",
            &names,
        );
        in_order(
            &zh.body,
            &[
                "Acme Pte",
                "sg",
                "dpo@acme.sg",
                "处理目的：客服",
                "处理方式",
                "手机号码",
                "行使权利",
                "单独同意",
                "PIPL Art. 39",
            ],
        );
        let en = cross_border_notice(
            Lang::En,
            "Acme Pte",
            "sg",
            "support",
            &cats,
            "dpo@acme.sg",
            &names,
        );
        in_order(
            &en.body,
            &[
                "Acme Pte",
                "sg",
                "dpo@acme.sg",
                "Purpose: support",
                "Method",
                "mobile",
                "rights",
                "separate",
                "PIPL Art. 39",
            ],
        );
    }

    #[test]
    fn misuse_lock_notice_says_received_locked_and_case() {
        let zh = misuse_lock_notice(Lang::ZhCn, "case-9", "CONTACT");
        in_order(&zh.body, &["已收到", "锁定", "case-9", "CONTACT", "§8.7"]);
        let en = misuse_lock_notice(Lang::En, "case-9", "CONTACT");
        in_order(
            &en.body,
            &[
                "received your report",
                "locked",
                "case-9",
                "CONTACT",
                "§8.7",
            ],
        );
    }

    #[test]
    fn policy_change_notice_names_the_version_changes_purposes_and_rule() {
        let n = PolicyChangeNotice {
            version: "2025-06-01".into(),
            published: "2025-06-01".into(),
            changes: vec!["CHANGE-A".into(), "CHANGE-B".into()],
            purposes: vec!["Product promotion".into()],
            contact: "CONTACT".into(),
        };
        let zh = policy_change_notice(Lang::ZhCn, &n);
        assert!(zh.subject.contains("隐私政策变更通知") && zh.subject.contains("2025-06-01"));
        in_order(
            &zh.body,
            &[
                "2025-06-01",
                "第十四条第二款",
                "重新取得您的同意",
                "CHANGE-A；CHANGE-B",
                "Product promotion",
                "重新同意之前",
                "CONTACT",
                "PIPL Art. 14 / policy §X",
            ],
        );
        let en = policy_change_notice(Lang::En, &n);
        in_order(
            &en.body,
            &[
                "2025-06-01",
                "Article 14(2)",
                "consent again",
                "What changed: CHANGE-A; CHANGE-B",
                "Purposes affected: Product promotion",
                "Until you consent again",
                "CONTACT",
                "PIPL Art. 14 / policy §X",
            ],
        );
        assert!(!en.body.contains('一'));
    }

    #[test]
    fn dsr_code_keeps_the_meaning_of_the_bilingual_text() {
        let zh = dsr_code(Lang::ZhCn, "deletion", "138****0000", "123456", 10, "dsr-1");
        assert_eq!(
            zh.body,
            "您的个人信息请求（删除，账号 138****0000）验证码：123456，10 分钟内有效。\n\
             请求编号：dsr-1\n如非本人操作，请忽略本消息。\n"
        );
        let en = dsr_code(Lang::En, "access", "", "123456", 10, "dsr-1");
        assert_eq!(
            en.body,
            "Your verification code is 123456 (personal information request: access, account -). \
             It expires in 10 minutes.\nRequest: dsr-1\n\
             If you did not make this request, ignore this message.\n"
        );
        assert!(dsr_code(Lang::En, "odd", "a", "1", 1, "r")
            .body
            .contains("odd"));
    }

    #[test]
    fn empty_inputs_render_placeholders_without_panicking() {
        let n = IncidentNotice::default();
        let c = CessationNotice::default();
        for l in LANGS {
            let all = [
                incident_notice(l, &n, &names),
                incident_announcement(l, &n, 0, &names),
                cessation_notice(l, &c),
                cessation_announcement(l, &c),
                cross_border_notice(l, "", "", "", &[], "", &names),
                misuse_lock_notice(l, "", ""),
                policy_change_notice(l, &PolicyChangeNotice::default()),
                dsr_code(l, "", "", "", 0, ""),
            ];
            for r in all {
                assert!(!r.subject.is_empty() && !r.subject.contains('\n'));
                assert!(r.body.ends_with('\n'));
            }
            let body = incident_notice(l, &n, &names).body;
            assert!(body.contains(or_none(l, "")), "{body}");
            assert!(body.contains("1970-01-01 00:00 UTC"));
        }
    }
}
