#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from the data set, the policies and the
README's example bodies. Small on purpose (tens of files per target); libFuzzer grows its own
working corpus from them in fuzz/corpus-run/ (not checked in).

Usage: fuzz/seed_corpus.py [DATA_DIR]   (default: ../shared/data/zh_CN-10k beside the repo)
"""
import csv
import io
import json
import pathlib
import sys

FUZZ = pathlib.Path(__file__).resolve().parent
REPO = FUZZ.parent
DATA = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared/data/zh_CN-10k"
OUT = FUZZ / "corpus"

# parse_csv_row's file order (pivault_core::import::CsvFile::ALL)
CSV_FILES = ["users.csv", "consent_events.csv", "orders.csv", "face_templates.csv",
             "business_contacts.csv", "icp_filings.csv"]
# route_bodies' route table order
ROUTES = {
    "create_subject": 0, "put_fields": 1, "consent": 2, "decision": 3, "disclosure": 4,
    "lookup": 5, "dsr": 6, "dsr_verify": 7, "dsr_reject": 8, "read_fields": 9, "dsr_list": 10,
}


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def full_width(s):
    return "".join(chr(ord(c) - 0x21 + 0xFF01) if "!" <= c <= "~" else c for c in s)


def rows(file, n):
    with open(DATA / file, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        header = next(r)
        return header, [row for _, row in zip(range(n), r)]


def csv_text(rows_):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows_)
    return buf.getvalue()


def main():
    # policy_parse: byte 0 even = policy TOML, odd = Cedar staff policy
    write("policy_parse", "default_toml", b"\x00" + (REPO / "policies/default.toml").read_bytes())
    write("policy_parse", "staff_cedar", b"\x01" + (REPO / "policies/staff.cedar").read_bytes())
    write("policy_parse", "tiny_toml", b"\x00[policy]\nid = \"x\"\nversion = \"1\"\n")

    # identifier_normalize: the identifiers of a few users, ASCII and full-width, and traps
    _, users = rows("users.csv", 8)
    for i, u in enumerate(users):
        for col, v in [("id", u[2]), ("mobile", u[4]), ("email", u[5]), ("name", u[1])]:
            write("identifier_normalize", f"u{i}_{col}", v)
        write("identifier_normalize", f"u{i}_mobile_fw", full_width(u[4]))
    for name, v in [("zwsp", "\u200b"), ("bidi_mobile", "\u202e15563170669"),
                    ("plus86", "+86 155-6317-0669"), ("decimal", "9007199254740993.01"),
                    ("ts", "2025-12-12T06:16:44Z"), ("idx", "11010519491231002x")]:
        write("identifier_normalize", name, v)

    # import_csv_row: byte 0 = file (bit 3 clear: the real header is used)
    for i, file in enumerate(CSV_FILES):
        header, rs = rows(file, 12)
        for j in range(0, len(rs), 4):
            write("import_csv_row", f"{file}_{j}", bytes([i]) + csv_text(rs[j:j + 4]).encode())
        write("import_csv_row", f"{file}_with_header",
              bytes([i | 0x08]) + csv_text([header] + rs[:2]).encode())

    # import_jsonl_row: a few ticket lines
    with open(DATA / "tickets.jsonl", "rb") as f:
        lines = f.read().splitlines()
    for j in range(0, 12, 3):
        write("import_jsonl_row", f"tickets_{j}", b"\n".join(lines[j:j + 3]))

    # route_bodies: byte 0 = route, byte 1 = key (0 app, 1 admin, 2 dpo, 3 none) and flags;
    # bodies from the README's examples
    u = users[0]
    bodies = {
        "create_subject": {"purpose": "service", "fields": [
            {"category": "user.account.id", "value": "u999001"},
            {"category": "user.name", "value": "测试用户"},
            {"category": "user.contact.mobile", "value": "+86 139-0000-0001"},
            {"category": "user.contact.email", "value": " New.User@Example.COM "},
            {"category": "user.government_id.id_card", "value": "11010519491231002x"}]},
        "put_fields": {"purpose": "service", "fields": [
            {"category": "user.contact.mobile", "value": full_width("13900000002")},
            {"category": "user.transaction.amount", "record": "order:o1", "name": "amount_cny",
             "value": "9007199254740993.01"}]},
        "consent": {"purpose": "marketing", "action": "withdraw", "method": "web"},
        "decision": {"action": "share", "purpose": "service", "subject_id": "SUBJECT",
                     "recipient": "sms-gateway"},
        "disclosure": {"action": "share", "purpose": "service", "recipient": "sms-gateway"},
        "lookup": {"by": "mobile", "value": "+86 187-6519-5768", "purpose": "service"},
        "dsr": {"kind": "correction", "email": f" {u[5].upper()} ",
                "corrections": [{"category": "user.contact.mobile", "value": "13900000003"}]},
        "dsr_verify": {"code": "123456"},
        "dsr_reject": {"reason": "manifestly_unfounded"},
    }
    for name, body in bodies.items():
        for key in (0, 1, 3):
            write("route_bodies", f"{name}_k{key}",
                  bytes([ROUTES[name], key]) + json.dumps(body, ensure_ascii=False).encode())
    write("route_bodies", "read_fields", bytes([ROUTES["read_fields"], 0]) +
          b"purpose=service&categories=user.name,user.contact.mobile")
    write("route_bodies", "dsr_list", bytes([ROUTES["dsr_list"], 1]) + b"state=verified&limit=5")
    write("route_bodies", "dsr_verify_token", bytes([ROUTES["dsr_verify"], 3 | 8]) +
          b'{"code": "000000"}')


if __name__ == "__main__":
    main()
