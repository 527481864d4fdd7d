//! The pages' strings in zh-CN and en: one table, key → (en, zh-CN). Templates hold no text
//! of their own; they ask [`Tr::t`] for each string by key. A key missing from the table
//! shows as the key itself (and a test checks that every key the templates use is here).

use std::collections::HashMap;
use std::sync::LazyLock;

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Simplified Chinese (the default: policy §4.1, the service is offered in the PRC).
    ZhCn,
    /// English.
    En,
}

impl Lang {
    /// The BCP 47 tag, as in `<html lang>`.
    #[must_use]
    pub fn tag(self) -> &'static str {
        match self {
            Self::ZhCn => "zh-CN",
            Self::En => "en",
        }
    }

    /// A tag from the language cookie or the switch (`zh-CN`, `en`).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "zh-CN" | "zh" => Some(Self::ZhCn),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The same language as the core names it (for names from the policy).
    #[must_use]
    pub fn notice(self) -> pivault_domain::notice::Lang {
        match self {
            Self::ZhCn => pivault_domain::notice::Lang::ZhCn,
            Self::En => pivault_domain::notice::Lang::En,
        }
    }

    /// The other language (the switch's target).
    #[must_use]
    pub fn other(self) -> Self {
        match self {
            Self::ZhCn => Self::En,
            Self::En => Self::ZhCn,
        }
    }

    /// The first supported language of an `Accept-Language` header (RFC 9110 §12.5.4), by
    /// weight; zh-CN when none is supported.
    #[must_use]
    pub fn negotiate(header: Option<&str>) -> Self {
        let Some(h) = header else {
            return Self::ZhCn;
        };
        let mut best: Option<(f32, Self)> = None;
        for part in h.split(',').take(20) {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = if tag == "en" || tag.starts_with("en-") {
                Self::En
            } else if tag == "zh" || tag.starts_with("zh-") {
                Self::ZhCn
            } else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Self::ZhCn, |(_, l)| l)
    }
}

/// The strings of one language.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    /// The language.
    pub lang: Lang,
}

impl Tr {
    /// The string of `key` in this language; the key itself when missing.
    #[must_use]
    pub fn t<'a>(&self, key: &'a str) -> &'a str {
        match TABLE.get(key) {
            Some((en, zh)) => match self.lang {
                Lang::En => en,
                Lang::ZhCn => zh,
            },
            None => key,
        }
    }
}

static TABLE: LazyLock<HashMap<&'static str, (&'static str, &'static str)>> =
    LazyLock::new(|| STRINGS.iter().map(|(k, en, zh)| (*k, (*en, *zh))).collect());

/// Every key, for the test that templates use only known keys.
pub fn keys() -> impl Iterator<Item = &'static str> {
    STRINGS.iter().map(|(k, _, _)| *k)
}

/// key, en, zh-CN.
const STRINGS: &[(&str, &str, &str)] = &[
    ("site.title", "Privacy Center", "个人信息保护中心"),
    ("site.handler", "Inspur Cloud", "浪潮云"),
    ("skip", "Skip to content", "跳到正文"),
    ("nav.label", "Main", "主导航"),
    ("nav.home", "Home", "首页"),
    ("nav.policy", "Privacy policy", "隐私政策"),
    ("nav.announcements", "Announcements", "公告"),
    ("nav.cookies", "Cookie settings", "Cookie 设置"),
    ("nav.me", "My data", "我的数据"),
    ("nav.consents", "Consents", "同意管理"),
    ("nav.recipients", "Recipients", "数据接收方"),
    ("nav.access", "Access history", "访问记录"),
    ("nav.requests", "Requests", "我的请求"),
    ("nav.signin", "Sign in", "登录"),
    ("nav.signout", "Sign out", "退出登录"),
    ("lang.switch", "中文", "English"),
    ("lang.switch.label", "切换到中文", "Switch to English"),
    ("footer.policy", "Privacy policy version", "隐私政策版本"),
    ("footer.contact", "Questions: use the form under Requests, or write to the privacy office (policy §XI). We reply within 10 days.", "如有疑问，请通过“我的请求”页面提交，或联系个人信息保护负责人（政策第十一章），我们将在 10 日内答复。"),
    // Cookie banner and settings (policy §III).
    ("banner.title", "Cookies on this site", "本网站的 Cookie"),
    ("banner.text", "We use strictly necessary cookies to run this site. With your permission we also use preference, analytics and third-party cookies (privacy policy §III). You can change your choice at any time in the cookie settings.", "我们使用必要的 Cookie 以保证本网站运行。经您同意，我们还会使用偏好、分析和第三方 Cookie（隐私政策第三章）。您可随时在 Cookie 设置中更改选择。"),
    ("banner.accept", "Accept all", "全部接受"),
    ("banner.reject", "Reject all", "全部拒绝"),
    ("banner.settings", "Settings", "设置"),
    ("banner.dismiss", "Close", "关闭"),
    ("cookies.title", "Cookie settings", "Cookie 设置"),
    ("cookies.intro", "Choose which cookies we may use. Strictly necessary cookies are always on: without them the site cannot work. A Global Privacy Control signal from your browser counts as a refusal of everything else unless you choose otherwise here.", "请选择我们可以使用的 Cookie。必要 Cookie 始终开启，否则网站无法运行。如果您的浏览器发送“全球隐私控制”（GPC）信号，在您另行选择之前，我们视为您拒绝其他所有 Cookie。"),
    ("cookies.current", "Your current choice", "您当前的选择"),
    ("cookies.none", "You have not made a choice yet: only strictly necessary cookies are used.", "您尚未作出选择：目前仅使用必要 Cookie。"),
    ("cookies.save", "Save my choice", "保存选择"),
    ("cookies.saved", "Your choice was saved.", "已保存您的选择。"),
    ("cookies.on", "On", "开启"),
    ("cookies.off", "Off", "关闭"),
    ("cookies.always", "Always on", "始终开启"),
    ("cookies.method", "How it was made", "选择方式"),
    ("method.accept_all", "Accept all", "全部接受"),
    ("method.reject_all", "Reject all", "全部拒绝"),
    ("method.save", "Saved in settings", "在设置中保存"),
    ("method.gpc", "Global Privacy Control signal from your browser", "浏览器发送的全球隐私控制（GPC）信号"),
    ("method.dismiss", "Banner closed without a choice", "关闭提示而未作选择"),
    ("cat.necessary", "Strictly necessary", "必要 Cookie"),
    ("cat.necessary.desc", "Sign-in session, language, security tokens and this choice itself.", "登录会话、语言、安全令牌以及本选择本身。"),
    ("cat.preferences", "Preferences", "偏好 Cookie"),
    ("cat.preferences.desc", "Remember settings such as layout between visits.", "在多次访问之间记住页面布局等设置。"),
    ("cat.analytics", "Analytics", "分析 Cookie"),
    ("cat.analytics.desc", "Count visits and measure how pages are used, to improve the service (policy §2.2.2).", "统计访问量、了解页面使用情况，以改进服务（政策 2.2.2）。"),
    ("cat.third_party", "Third-party", "第三方 Cookie"),
    ("cat.third_party.desc", "Set by partners' embedded services (policy §5.1).", "由合作方嵌入的服务设置（政策 5.1）。"),
    // Home.
    ("home.title", "Your personal information, your rights", "您的个人信息，您的权利"),
    ("home.intro", "Here you can see what personal information Inspur Cloud holds about you, why and for how long; who received it and who accessed it; give or withdraw consents; and ask for a copy, a correction or deletion. Sign in with a one-time code sent to the email or mobile number on your account.", "在这里，您可以查看浪潮云持有您的哪些个人信息、用途和保存期限；谁接收或访问过这些信息；给予或撤回同意；以及申请获取副本、更正或删除。请使用发送至您账号所留邮箱或手机号的一次性验证码登录。"),
    ("home.rights", "Your rights under the Personal Information Protection Law (Art. 44–50)", "您依据《个人信息保护法》享有的权利（第四十四条至第五十条）"),
    ("home.right.access", "See and copy your data", "查阅、复制您的个人信息"),
    ("home.right.correct", "Have it corrected", "更正、补充"),
    ("home.right.delete", "Have it deleted", "删除"),
    ("home.right.withdraw", "Withdraw a consent", "撤回同意"),
    ("home.right.explain", "Have the rules explained", "要求解释说明处理规则"),
    ("home.right.cancel", "Cancel your account", "注销账号"),
    ("home.signin", "Sign in to see your data", "登录查看您的数据"),
    // Sign-in.
    ("signin.title", "Sign in", "登录"),
    ("signin.intro", "Enter the email address or the mobile number on your account. If it is on record, we send a 6-digit code to it. We do not say whether an account exists.", "请输入您账号所留的邮箱或手机号。如该信息在册，我们会向其发送 6 位验证码。我们不会透露账号是否存在。"),
    ("signin.email", "Email address", "邮箱"),
    ("signin.mobile", "Mobile number", "手机号"),
    ("signin.or", "or", "或"),
    ("signin.send", "Send code", "发送验证码"),
    ("signin.code.title", "Enter your code", "输入验证码"),
    ("signin.code.intro", "If the email or mobile number is on record, we have sent a 6-digit code to it. It is valid for 10 minutes, for 3 tries.", "如该邮箱或手机号在册，我们已向其发送 6 位验证码，10 分钟内有效，最多可尝试 3 次。"),
    ("signin.code.label", "6-digit code", "6 位验证码"),
    ("signin.code.submit", "Sign in", "登录"),
    ("signin.again", "Start again", "重新开始"),
    ("signin.signed_out", "You have signed out.", "您已退出登录。"),
    ("signin.guardian.title", "Sign in as a parent or guardian", "家长或监护人登录"),
    ("signin.guardian.intro", "For the parent or guardian of a child under 14 (PIPL Art. 31; policy §IX). Enter your own mobile number, as given on the child's account. If it is on record, we send a 6-digit code to it. Signed in, you can give or withdraw the child's consents; each is recorded as given by the guardian.", "适用于未满十四周岁儿童的父母或其他监护人（《个人信息保护法》第三十一条；政策第九部分）。请输入您本人在儿童账号中登记的手机号。如该号码在册，我们会向其发送 6 位验证码。登录后，您可以代儿童给予或撤回同意，每项均记录为由监护人作出。"),
    ("signin.guardian.mobile", "Your mobile number (as the guardian)", "您的手机号（监护人）"),
    ("signin.guardian.link", "Parent or guardian of a child under 14? Sign in here.", "未满十四周岁儿童的家长或监护人？请在此登录。"),
    ("signin.guardian.self", "Signing in for your own account? Use the usual sign-in.", "为本人账号登录？请使用普通登录。"),
    // Errors.
    ("error.title", "Something went wrong", "出错了"),
    ("error.csrf", "This form has expired. Please go back, reload the page and try again.", "表单已过期，请返回并刷新页面后重试。"),
    ("error.input", "Please check what you entered.", "请检查您输入的内容。"),
    ("error.code", "The code is wrong, has expired or has been used up. Start again to get a new one.", "验证码错误、已过期或已用尽，请重新开始以获取新的验证码。"),
    ("error.rate", "Too many attempts. Please wait a while and try again.", "尝试次数过多，请稍后再试。"),
    ("error.unavailable", "The service is busy. Please try again in a moment.", "服务繁忙，请稍后再试。"),
    ("error.notfound", "This page does not exist.", "页面不存在。"),
    ("error.locked", "Your data is locked while a misuse report is investigated (policy §8.7). The security team will contact you.", "在调查您报告的异常使用期间，您的数据已被锁定（政策 8.7），安全团队将与您联系。"),
    ("error.session", "Please sign in again.", "请重新登录。"),
    ("error.forbidden", "Your key's role may not do this here.", "您的密钥所属角色无权执行此操作。"),
    ("error.guardian_required", "A child under 14 gives consent through a parent or guardian (PIPL Art. 31). Ask them to sign in with their own mobile under \"Parent or guardian\" on the sign-in page. You can still withdraw a consent yourself.", "未满十四周岁的儿童需由父母或其他监护人同意（《个人信息保护法》第三十一条）。请让监护人在登录页面选择“家长或监护人”，用其本人手机号登录。您本人仍可撤回同意。"),
    ("error.denied", "This is not released to you: the decision refused it. The refusal and its reason are in the audit log.", "该内容不向您提供：判定已拒绝。拒绝及其原因已记入审计日志。"),
    ("error.guardian_adult", "The account holder is 14 or older and now manages their own consents (PIPL Art. 31).", "该账号持有人已年满十四周岁，现由其本人管理同意（《个人信息保护法》第三十一条）。"),
    ("error.guardian_session", "As a guardian you can manage the child's consents only.", "作为监护人，您只能管理儿童的同意。"),
    ("error.back", "Back to the start", "返回首页"),
    // My data.
    ("me.title", "Your data", "您的数据"),
    ("me.intro", "What we hold about you, by category: the fields, why we use them and on which legal basis, how long we keep them, and to whom they may be provided. Values are not shown here: request a copy below to receive them.", "我们按类别列出持有的您的信息：字段、使用目的及法律依据、保存期限，以及可能向谁提供。此处不显示具体内容：如需获取，请在下方申请副本。"),
    ("me.none", "We hold no personal information about you.", "我们未持有您的个人信息。"),
    ("col.category", "Category", "类别"),
    ("col.fields", "Fields", "字段"),
    ("col.records", "Records", "记录数"),
    ("col.purposes", "Purposes and legal basis", "目的与法律依据"),
    ("col.retention", "Kept for", "保存期限"),
    ("col.recipients", "May be provided to", "可能提供给"),
    ("col.purpose", "Purpose", "目的"),
    ("col.clause", "Policy clause", "政策条款"),
    ("col.state", "Status", "状态"),
    ("col.action", "Action", "操作"),
    ("col.at", "When", "时间"),
    ("col.principal", "Who", "访问方"),
    ("col.categories", "Categories", "类别"),
    ("col.proof", "Proof", "证明"),
    ("col.recipient", "Recipient", "接收方"),
    ("col.kind", "Request", "请求类型"),
    ("col.received", "Filed", "提交时间"),
    ("col.due", "Answer due", "答复期限"),
    ("col.result", "Result", "结果"),
    ("unit.days", "days", "天"),
    ("retention.then", "then", "届满后"),
    ("retention.policy", "as the policy says", "按政策规定"),
    ("end.delete", "deleted", "删除"),
    ("end.anonymize", "anonymized", "匿名化"),
    ("restricted.until", "kept only as required by law until", "仅依法保存至"),
    ("basis.consent", "your consent", "您的同意"),
    ("basis.contract", "necessary for the contract", "履行合同所必需"),
    ("basis.legal_obligation", "legal obligation", "法定义务"),
    ("basis.vital_interests", "vital interests", "重大利益"),
    ("basis.public_interest", "public interest", "公共利益"),
    ("basis.public_information", "information already public", "已公开的信息"),
    ("basis.hr", "human resources management", "人力资源管理"),
    ("sensitive", "sensitive", "敏感"),
    // Consents.
    ("consents.title", "Your consents", "您的同意"),
    ("consents.guardian_intro", "You are signed in as the parent or guardian of a child under 14 (PIPL Art. 31; policy §IX). The consents you give or withdraw here are the child's, recorded as given by the guardian. A child's personal information is sensitive (PIPL Art. 28), so each consent you give here is a separate consent for that one purpose (Art. 29).", "您正以未满十四周岁儿童的父母或其他监护人身份登录（《个人信息保护法》第三十一条；政策第九部分）。您在此给予或撤回的是该儿童的同意，并记录为由监护人作出。儿童的个人信息属于敏感个人信息（第二十八条），您在此给予的每项同意均为针对该用途的单独同意（第二十九条）。"),
    ("consents.intro", "The uses of your data that need your consent. You can give or withdraw each one at any time; withdrawing does not affect what was done before (PIPL Art. 15).", "以下用途需要您的同意。您可以随时给予或撤回；撤回不影响撤回前基于同意已进行的处理（《个人信息保护法》第十五条）。"),
    ("consents.granted", "Given", "已同意"),
    ("consents.not_granted", "Not given", "未同意"),
    ("consents.grant", "Give consent", "同意"),
    ("consents.withdraw", "Withdraw consent", "撤回同意"),
    ("consents.separate", "Separate consent (PIPL Art. 29)", "单独同意（《个人信息保护法》第二十九条）"),
    ("consents.given_under", "given under policy version", "依据政策版本"),
    ("consents.history", "History of your consents", "同意记录"),
    ("consents.none", "No consent events are recorded.", "暂无同意记录。"),
    ("consents.outdated", "No longer counts", "已失效"),
    ("consents.changed_in", "The policy changed this use materially in version", "隐私政策对该用途作出重大变更的版本"),
    ("consents.reconsent", "Consent again", "重新同意"),
    ("consents.reconsent_notice", "Our privacy policy changed materially since you gave some of your consents. Those consents no longer count until you give them again under the current policy (policy §X; PIPL Art. 14).", "自您给予部分同意以来，我们的隐私政策发生了重大变更。在您依据现行政策重新同意之前，这些同意不再有效（政策第十章；《个人信息保护法》第十四条）。"),
    ("me.reconsent", "The privacy policy changed materially: please review your consents.", "隐私政策发生重大变更，请重新确认您的同意。"),
    ("policy.history", "Version history", "版本历史"),
    ("policy.published", "Published", "发布日期"),
    ("policy.changes", "Changes", "变更内容"),
    ("policy.material", "material: consent is asked again", "重大变更：需重新取得同意"),
    ("policy.minor", "not material", "非重大变更"),
    ("policy.no_changes", "No changes recorded.", "未记录变更。"),
    ("policy.text", "Full text", "全文"),
    ("policy.diff", "Changes between two versions", "两个版本之间的变更"),
    ("policy.diff.from", "From version", "起始版本"),
    ("policy.diff.to", "To version", "目标版本"),
    ("policy.diff.show", "Show the changes", "查看变更"),
    ("policy.diff.invalid", "Pick two versions of the history, the older one first.", "请从版本历史中选择两个版本，较早的版本在前。"),
    ("policy.no_text", "The text of this version is not on file.", "该版本全文未存档。"),
    ("consents.done", "Your choice was recorded.", "已记录您的选择。"),
    ("action.grant", "given", "同意"),
    ("action.withdraw", "withdrawn", "撤回"),
    // Recipients.
    ("recipients.title", "Who received your data", "谁接收了您的数据"),
    ("recipients.intro", "Every time your data was provided to another party, shared, transferred abroad or disclosed (PIPL Art. 23, 25, 39; policy §V).", "您的数据每一次被提供、共享、向境外传输或公开披露的记录（《个人信息保护法》第二十三、二十五、三十九条；政策第五章）。"),
    ("recipients.none", "Your data has not been provided to anyone.", "您的数据未向任何方提供。"),
    // Access history.
    ("access.title", "Who accessed your data", "谁访问了您的数据"),
    ("access.intro", "Each read, provision or export of your data, from the audit log: the service or role that did it, when, and for which purpose. Staff are shown by role, never by name.", "来自审计日志的每一次读取、提供或导出记录：执行的服务或角色、时间及目的。工作人员仅以角色显示，不显示姓名。"),
    ("access.none", "Nobody has accessed your data.", "尚无访问记录。"),
    ("access.proof", "Download", "下载"),
    ("access.proof_intro", "Each entry's proof shows it is in the audit log as signed: check it offline with pivault-verify and the log's public key at", "每条记录的证明表明它已按签名写入审计日志：可使用 pivault-verify 和审计日志公钥离线核验，公钥地址："),
    // Requests.
    ("requests.title", "Your requests", "您的请求"),
    ("requests.intro", "Requests you filed, with the date by which we must answer (policy §XI: within 10 days).", "您提交的请求及我们的答复期限（政策第十一章：10 日内）。"),
    ("requests.none", "You have not filed any request.", "您尚未提交请求。"),
    ("requests.download", "Download (JSON)", "下载（JSON）"),
    ("requests.download_csv", "Download (CSV)", "下载（CSV）"),
    ("requests.receipt", "Deletion receipt (signed)", "删除回执（已签名）"),
    ("requests.overdue", "overdue", "已逾期"),
    ("requests.file", "File a request", "提交请求"),
    ("requests.kind", "What do you ask for?", "您要申请什么？"),
    ("requests.submit", "File the request", "提交"),
    ("requests.erased", "Your personal information was deleted. This page stays open until you sign out so you can download the signed deletion receipt; there is nothing else left to show.", "您的个人信息已删除。在您退出登录之前，本页面保持可用，以便您下载已签名的删除回执；此外已无其他可显示的内容。"),
    ("requests.filed", "Your request was filed.", "您的请求已提交。"),
    ("requests.delete_warning", "Deletion and account cancellation cannot be undone. Records the law requires us to keep are kept, locked, until their period ends.", "删除和注销无法撤销。法律要求保存的记录将被限制处理并保存至期限届满。"),
    ("kind.access", "See what you hold about me", "查阅我的个人信息"),
    ("kind.copy", "A copy of my data", "获取个人信息副本"),
    ("kind.correction", "Correct my data", "更正、补充"),
    ("kind.deletion", "Delete my data", "删除我的个人信息"),
    ("kind.withdrawal", "Withdraw consent", "撤回同意"),
    ("kind.cancellation", "Cancel my account", "注销账号"),
    ("kind.explanation", "Explain the processing rules", "解释说明处理规则"),
    ("kind.misuse_report", "Report of misuse", "异常使用报告"),
    ("kind.inquiry", "Question or complaint", "咨询或投诉"),
    ("kind.sign_in", "Sign-in", "登录"),
    ("state.received", "received", "已接收"),
    ("state.identity_unverified", "waiting for verification", "待验证"),
    ("state.verified", "verified, waiting", "已验证，待处理"),
    ("state.in_progress", "in progress", "处理中"),
    ("state.completed", "done", "已完成"),
    ("state.rejected", "refused", "已拒绝"),
    ("state.failed", "delayed, being fixed", "处理延迟"),
    ("state.expired", "expired", "已过期"),
    ("misuse.title", "Report misuse of your account", "报告账号异常使用"),
    ("misuse.intro", "If you think your account or data is being used by someone else, report it. We lock your data at once, for everyone except the security team, until it is resolved (policy §8.7).", "如果您认为您的账号或数据被他人使用，请报告。我们会立即锁定您的数据（安全团队除外），直至问题解决（政策 8.7）。"),
    ("misuse.submit", "Report misuse and lock my data", "报告并锁定我的数据"),
    ("inquiry.title", "Ask a question or complain", "咨询或投诉"),
    ("inquiry.intro", "Write to the privacy office. We answer within 10 days (policy §XI). If you are not satisfied, you may complain to the authorities or go to court.", "向个人信息保护负责人留言，我们将在 10 日内答复（政策第十一章）。如对答复不满意，您可以向监管部门投诉或向法院提起诉讼。"),
    ("inquiry.label", "Your question or complaint", "您的问题或投诉"),
    ("inquiry.submit", "Send", "发送"),
    // Policy.
    ("policy.title", "Privacy policy", "隐私政策"),
    ("policy.version", "Version", "版本"),
    ("policy.intro", "The policy in force, as the service enforces it: each use of personal information, its legal basis and clause, how long data is kept and who may receive it.", "现行政策及其在系统中的执行方式：每项个人信息用途、法律依据与条款、保存期限以及可能的接收方。"),
    ("policy.purposes", "Purposes", "处理目的"),
    ("policy.categories", "Categories of personal information", "个人信息类别"),
    ("policy.recipients", "Recipients", "接收方"),
    ("policy.region", "Stored in", "存储地"),
    ("policy.entrusted", "entrusted party (processes on our behalf)", "受托方（代表我们处理）"),
    ("policy.handler", "another handler", "其他个人信息处理者"),
    // Announcements.
    ("ann.title", "Announcements", "公告"),
    ("ann.intro", "Public notices about security incidents and the service (policy §8.3, §8.6).", "关于安全事件和服务的公告（政策 8.3、8.6）。"),
    ("ann.none", "There are no announcements.", "暂无公告。"),
    ("ann.published", "Published", "发布时间"),
    // The privacy office's console.
    ("console.title", "Privacy office console", "个人信息保护工作台"),
    ("console.signin", "Console sign-in", "工作台登录"),
    ("console.signin.intro", "For the privacy office: sign in with an API key that has the dpo, admin or security role. Every action is checked and audited as through the API.", "供个人信息保护部门使用：请使用具有 dpo、admin 或 security 角色的 API 密钥登录。所有操作与 API 相同，均经过权限校验并记入审计日志。"),
    ("console.key", "API key", "API 密钥"),
    ("console.key.submit", "Sign in", "登录"),
    ("console.bad_key", "This key is not valid or has no console role.", "该密钥无效或不具备工作台角色。"),
    ("console.principal", "Signed in as", "当前登录"),
    ("console.queue", "Data subject requests", "个人信息权利请求"),
    ("console.queue.none", "No open requests.", "暂无待处理请求。"),
    ("console.inquiries", "Questions and complaints", "咨询与投诉"),
    ("console.inquiries.none", "No open questions or complaints.", "暂无待处理的咨询或投诉。"),
    ("console.days_left", "Days left", "剩余天数"),
    ("console.approve", "Approve and run", "批准并执行"),
    ("console.answer", "Mark answered", "标记为已答复"),
    ("console.read_inquiry", "Read the question", "查看问题"),
    ("console.inquiry", "Question or complaint", "咨询或投诉"),
    ("console.inquiry.intro", "What the person wrote (policy §XI). Opening it was decided and recorded in the audit log under your key.", "个人所提交的内容（政策第十一部分）。本次查看已经过判定，并以您的密钥记入审计日志。"),
    ("console.reject", "Reject", "拒绝"),
    ("console.reason", "Reason", "理由"),
    ("console.incidents", "Security incidents", "安全事件"),
    ("console.incidents.none", "No incidents.", "暂无安全事件。"),
    ("console.notices", "Notices: queued / delivered / announced / failed / letters", "通知：排队 / 已送达 / 已公告 / 失败 / 信函"),
    ("console.holds", "Legal holds", "法律保全"),
    ("console.holds.none", "No active legal holds.", "暂无生效的法律保全。"),
    ("console.report", "Disclosures in the last 30 days", "近 30 日对外提供情况"),
    ("console.report.total", "Total", "合计"),
    ("console.report.exceptions", "under a §5.4 exception", "依第 5.4 条例外"),
    ("console.report.exception", "Exception:", "例外："),
    ("console.report.subjects", "people", "涉及人数"),
    ("console.count", "Count", "数量"),
    ("console.audit", "Audit chain", "审计链"),
    ("console.audit.check", "Verify the audit chain now", "立即校验审计链"),
    ("console.audit.ok", "The audit chain verifies.", "审计链校验通过。"),
    ("console.audit.broken", "The audit chain is broken at entry", "审计链在以下条目处断裂："),
    ("console.audit.entries", "Entries", "条目数"),
    ("console.not_permitted", "Your role may not see this.", "您的角色无权查看此内容。"),
    ("console.done", "Done.", "已完成。"),
    ("urgency.overdue", "overdue", "已逾期"),
    ("urgency.soon", "due soon", "即将到期"),
    ("urgency.ok", "in time", "期限内"),
    ("col.id", "Id", "编号"),
    ("col.severity", "Severity", "级别"),
    ("col.what", "What happened", "事件经过"),
    ("col.affected", "People affected", "受影响人数"),
    ("col.subject", "Subject", "个人信息主体"),
    ("col.reference", "Reference", "依据文号"),
    ("reason.identity_not_verified", "Identity not verified", "身份未能核验"),
    ("reason.no_matching_subject", "No data held under this identity", "未持有该身份的个人信息"),
    ("reason.manifestly_unfounded", "Manifestly unfounded or abusive", "明显无理或滥用权利"),
    ("reason.legal_obligation", "A law requires the processing to continue", "法律要求继续处理"),
    ("reason.national_security_or_public_interest", "National security or public interest", "国家安全或公共利益"),
    ("reason.criminal_proceedings", "Criminal proceedings", "刑事侦查、起诉、审判"),
    ("reason.harms_others", "Would harm others' rights", "将损害他人权益"),
    ("reason.trade_secret", "Trade secret", "涉及商业秘密"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_heaviest_supported_tag() {
        assert_eq!(Lang::negotiate(None), Lang::ZhCn);
        assert_eq!(Lang::negotiate(Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::negotiate(Some("fr, en;q=0.5, zh-CN;q=0.8")),
            Lang::ZhCn
        );
        assert_eq!(Lang::negotiate(Some("de")), Lang::ZhCn);
        assert_eq!(Lang::negotiate(Some("en;q=0")), Lang::ZhCn);
    }

    #[test]
    fn every_key_has_both_languages_and_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for (k, en, zh) in STRINGS {
            assert!(seen.insert(*k), "duplicate key {k}");
            assert!(!en.is_empty() && !zh.is_empty(), "{k}");
        }
        assert_eq!(Tr { lang: Lang::En }.t("nav.home"), "Home");
        assert_eq!(Tr { lang: Lang::ZhCn }.t("nav.home"), "首页");
    }

    /// Every `t("…")` in the templates names a key of the table.
    #[test]
    fn templates_use_only_known_keys() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let known: std::collections::HashSet<&str> = keys().collect();
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            for (at, _) in text.match_indices("t(\"") {
                let rest = &text[at + 3..];
                let key = &rest[..rest.find('"').unwrap()];
                assert!(known.contains(key), "unknown key {key}");
                n += 1;
            }
        }
        assert!(n > 50);
    }
}
