//! Device access rules: `devices.allow`/`devices.deny` lines for v1 and a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program for v2.
//!
//! Owns: validating `linux.resources.devices` and translating it; nothing here has effects.
//!
//! Semantics: the rule list is read in order and, for each access bit (m, r, w), the
//! **last** rule covering it decides; no rule → deny. That is what the OCI spec describes.
//! - v1 (Documentation/admin-guide/cgroup-v1/devices.rst): we write `a` to `devices.deny`
//!   first (deny everything, clear the allow list), then each rule in spec order to
//!   `devices.allow` or `devices.deny` (runc `libcontainer/cgroups/fs/devices.go` before
//!   its emulator); the kernel keeps per-device access sets. (A deny narrower than an
//!   earlier wildcard allow is a no-op in v1's list model; such specs are unusual.)
//! - v2 (`include/uapi/linux/bpf.h`: `BPF_PROG_TYPE_CGROUP_DEVICE`,
//!   `struct bpf_cgroup_dev_ctx`; kernel/bpf/cgroup.c): one program section per access
//!   bit checks the rules in reverse and stops at the first hit; the access is allowed
//!   only if every requested bit is (compare runc `libcontainer/cgroups/devices/devicefilter.go`,
//!   crun `src/libcrun/ebpf.c`, which match whole access strings instead).
//!   Fifo rules (`p`) are dropped: the device controller only checks char and block
//!   devices. `u` (unbuffered char) is a char device.
//!
//! The program is plain data ([`DeviceProgram::instructions`]): loading and attaching
//! it needs the bpf(2) syscall, i.e. `unsafe`, which lives outside this crate
//! ([`crate::DeviceProgramLoader`]).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::CgroupError;

/// One validated device rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rule {
    pub allow: bool,
    /// `None` = all types (`a`); `Some('b' | 'c')`.
    pub kind: Option<char>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Bits: 1 = mknod (m), 2 = read (r), 4 = write (w).
    pub access: u32,
}

const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

impl Rule {
    fn access_str(&self) -> String {
        let mut s = String::new();
        if self.access & ACC_READ != 0 {
            s.push('r');
        }
        if self.access & ACC_WRITE != 0 {
            s.push('w');
        }
        if self.access & ACC_MKNOD != 0 {
            s.push('m');
        }
        s
    }

    /// The v1 `devices.allow`/`devices.deny` line: `c 1:3 rwm`, `a *:* rwm`.
    pub fn v1_line(&self) -> String {
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.kind.unwrap_or('a'),
            num(self.major),
            num(self.minor),
            self.access_str()
        )
    }
}

/// Validate the spec's rules. Fifo rules are dropped (see module doc).
pub(crate) fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, CgroupError> {
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        let invalid = |reason: &str| CgroupError::InvalidValue {
            field: "devices",
            value: format!(
                "{{allow: {}, type: {:?}, major: {:?}, minor: {:?}, access: {:?}}}",
                r.allow(),
                r.typ().map(|t| t.as_str().to_owned()),
                r.major(),
                r.minor(),
                r.access()
            ),
            reason: reason.to_owned(),
        };
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some('b'),
            LinuxDeviceType::C | LinuxDeviceType::U => Some('c'),
            LinuxDeviceType::P => continue,
        };
        // include/linux/kdev_t.h: 12-bit major, 20-bit minor.
        let num = |n: Option<i64>, max: i64, what: &str| match n {
            None | Some(-1) => Ok(None),
            Some(n) if (0..=max).contains(&n) => Ok(Some(n as u32)),
            Some(_) => Err(invalid(&format!(
                "{what} must be in 0..={max} or absent (wildcard)"
            ))),
        };
        let major = num(r.major(), 0xfff, "major")?;
        let minor = num(r.minor(), 0xf_ffff, "minor")?;
        let access = match r.access().as_deref() {
            None | Some("") => ACC_ALL,
            Some(a) => {
                let mut bits = 0;
                for ch in a.chars() {
                    bits |= match ch {
                        'r' => ACC_READ,
                        'w' => ACC_WRITE,
                        'm' => ACC_MKNOD,
                        _ => return Err(invalid("access may only contain 'r', 'w' and 'm'")),
                    };
                }
                bits
            }
        };
        out.push(Rule {
            allow: r.allow(),
            kind,
            major,
            minor,
            access,
        });
    }
    Ok(out)
}

/// v1 writes, in order: `(file, line)`.
pub(crate) fn v1_writes(rules: &[Rule]) -> Vec<(&'static str, String)> {
    // Deny everything first so the result does not depend on what the parent allowed.
    let mut out = vec![("devices.deny", "a".to_owned())];
    for r in rules {
        out.push((
            if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            },
            r.v1_line(),
        ));
    }
    out
}

/// A compiled `BPF_PROG_TYPE_CGROUP_DEVICE` program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProgram {
    insns: Vec<u64>,
}

impl DeviceProgram {
    /// The license string to pass to BPF_PROG_LOAD (no GPL-only helpers are used).
    pub const LICENSE: &'static str = "Apache";

    /// The instructions, each a `struct bpf_insn` encoded little-endian into a u64
    /// (byte 0 opcode, byte 1 dst_reg | src_reg << 4, bytes 2-3 off, bytes 4-7 imm).
    pub fn instructions(&self) -> &[u64] {
        &self.insns
    }

    /// The instructions as the bytes BPF_PROG_LOAD reads (`insn_cnt * 8`).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.insns.iter().flat_map(|i| i.to_le_bytes()).collect()
    }

    /// Compile `linux.resources.devices` (validated like `set` does).
    pub fn from_spec(rules: &[LinuxDeviceCgroup]) -> Result<DeviceProgram, CgroupError> {
        Ok(compile(&parse_rules(rules)?))
    }

    pub(crate) fn from_rules(rules: &[Rule]) -> DeviceProgram {
        compile(rules)
    }
}

// eBPF encoding (include/uapi/linux/bpf.h, bpf_common.h).
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JMP_JA: u8 = 0x05; // BPF_JMP | BPF_JA
const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; };
// access_type = (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*
const DEV_BLOCK: i32 = 1; // BPF_DEVCG_DEV_BLOCK
const DEV_CHAR: i32 = 2; // BPF_DEVCG_DEV_CHAR

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | u64::from(dst | (src << 4)) << 8
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

/// Instructions with symbolic jump targets, resolved by [`Asm::finish`].
#[derive(Default)]
struct Asm {
    insns: Vec<u64>,
    /// (instruction index, label) of jumps to patch.
    fixups: Vec<(usize, usize)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.insns.len());
    }
    fn op(&mut self, i: u64) {
        self.insns.push(i);
    }
    fn jump(&mut self, code: u8, dst: u8, imm: i32, label: usize) {
        self.fixups.push((self.insns.len(), label));
        self.insns.push(insn(code, dst, 0, 0, imm));
    }
    fn ret(&mut self, v: i32) {
        self.op(insn(ALU64_MOV_K, R0, 0, 0, v));
        self.op(insn(JMP_EXIT, 0, 0, 0, 0));
    }
    fn finish(mut self) -> Vec<u64> {
        for (at, label) in self.fixups {
            let target = self.labels[label].expect("every jump label is bound");
            // Offsets count from the instruction after the jump.
            let off = (target as i64 - at as i64 - 1) as i16;
            self.insns[at] = (self.insns[at] & !(0xffff << 16)) | u64::from(off as u16) << 16;
        }
        self.insns
    }
}

/// Compile the rules. Each requested access bit (m, r, w) is decided on its own by the
/// last rule that covers it (rules are tested in reverse, the first hit decides); the
/// access is allowed only if every requested bit is. So `allow c 5:1 rwm` then
/// `deny c 5:1 w` denies an O_RDWR open but allows O_RDONLY, and `allow c 5:1 r` plus
/// `allow c 5:1 w` allows O_RDWR — as the v1 kernel's per-device access sets would.
fn compile(rules: &[Rule]) -> DeviceProgram {
    let mut a = Asm::default();
    a.op(insn(LDX_MEM_W, R2, R1, 0, 0)); // r2 = ctx->access_type
    a.op(insn(ALU32_AND_K, R2, 0, 0, 0xffff)); // r2 = device type
    a.op(insn(LDX_MEM_W, R3, R1, 0, 0)); // r3 = ctx->access_type
    a.op(insn(ALU32_RSH_K, R3, 0, 0, 16)); // r3 = requested access bits
    a.op(insn(LDX_MEM_W, R4, R1, 4, 0)); // r4 = ctx->major
    a.op(insn(LDX_MEM_W, R5, R1, 8, 0)); // r5 = ctx->minor
    for bit in [ACC_MKNOD, ACC_READ, ACC_WRITE] {
        let granted = a.label();
        // Not requested: nothing to decide for this bit.
        a.op(insn(ALU32_MOV_X, R1, R3, 0, 0));
        a.op(insn(ALU32_AND_K, R1, 0, 0, bit as i32));
        a.jump(JMP_JEQ_K, R1, 0, granted);
        let mut decided = false;
        for r in rules.iter().rev().filter(|r| r.access & bit != 0) {
            let next = a.label();
            if let Some(kind) = r.kind {
                a.jump(
                    JMP_JNE_K,
                    R2,
                    if kind == 'b' { DEV_BLOCK } else { DEV_CHAR },
                    next,
                );
            }
            if let Some(m) = r.major {
                a.jump(JMP_JNE_K, R4, m as i32, next);
            }
            if let Some(m) = r.minor {
                a.jump(JMP_JNE_K, R5, m as i32, next);
            }
            if r.allow {
                a.jump(JMP_JA, 0, 0, granted);
            } else {
                a.ret(0);
            }
            a.bind(next);
            if r.kind.is_none() && r.major.is_none() && r.minor.is_none() {
                // A catch-all for this bit: earlier rules can never be reached.
                decided = true;
                break;
            }
        }
        if !decided {
            a.ret(0); // no rule covers this bit: deny
        }
        a.bind(granted);
    }
    a.ret(1);
    DeviceProgram { insns: a.finish() }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// A tiny interpreter for exactly the instructions [`compile`] emits, so the
    /// program's decisions can be checked without loading it.
    pub(crate) fn run(
        prog: &DeviceProgram,
        kind: char,
        major: u32,
        minor: u32,
        access: &str,
    ) -> bool {
        let t: u32 = if kind == 'b' { 1 } else { 2 };
        let mut acc = 0;
        for c in access.chars() {
            acc |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => panic!("bad access"),
            };
        }
        let ctx = [(acc << 16) | t, major, minor];
        let mut r = [0u64; 11];
        let insns = prog.instructions();
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = insns[pc];
            let code = (i & 0xff) as u8;
            let dst = ((i >> 8) & 0xf) as usize;
            let src = ((i >> 12) & 0xf) as usize;
            let off = ((i >> 16) & 0xffff) as u16 as i16;
            let imm = (i >> 32) as u32 as i32;
            pc += 1;
            match code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from ctx");
                    r[dst] = u64::from(ctx[off as usize / 4]);
                }
                ALU32_AND_K => r[dst] = u64::from((r[dst] as u32) & imm as u32),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> imm),
                ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
                ALU64_MOV_K => r[dst] = imm as i64 as u64,
                JMP_JNE_K => {
                    if r[dst] != imm as i64 as u64 {
                        pc = (pc as i64 + i64::from(off)) as usize;
                    }
                }
                JMP_JEQ_K => {
                    if r[dst] == imm as i64 as u64 {
                        pc = (pc as i64 + i64::from(off)) as usize;
                    }
                }
                JMP_JA => pc = (pc as i64 + i64::from(off)) as usize,
                JMP_EXIT => return r[0] == 1,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
        panic!("program did not terminate");
    }

    fn rules(json: &str) -> Vec<Rule> {
        let spec: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        parse_rules(&spec).unwrap()
    }

    /// The rules runc's default spec and docker generate (deny all, then the usual devices).
    pub(crate) const DEFAULT_RULES: &str = r#"[
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
        {"allow": true, "type": "c", "major": 136, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
        {"allow": false, "type": "c", "major": 5, "minor": 1, "access": "w"},
        {"allow": true, "type": "b", "access": "m"}
    ]"#;

    #[test]
    fn v1_lines_in_order_after_deny_all() {
        let w = v1_writes(&rules(DEFAULT_RULES));
        assert_eq!(w[0], ("devices.deny", "a".to_owned()));
        assert_eq!(w[1], ("devices.deny", "a *:* rwm".to_owned()));
        assert_eq!(w[2], ("devices.allow", "c 1:3 rwm".to_owned()));
        assert_eq!(w[8], ("devices.allow", "c 136:* rwm".to_owned()));
        assert_eq!(w[10], ("devices.deny", "c 5:1 w".to_owned()));
        assert_eq!(w[11], ("devices.allow", "b *:* m".to_owned()));
    }

    #[test]
    fn program_last_match_wins() {
        let p = DeviceProgram::from_rules(&rules(DEFAULT_RULES));
        assert!(run(&p, 'c', 1, 3, "rw")); // /dev/null
        assert!(run(&p, 'c', 1, 3, "rwm"));
        assert!(run(&p, 'c', 136, 7, "rw")); // /dev/pts/7
        assert!(!run(&p, 'c', 1, 1, "r")); // /dev/mem
        assert!(!run(&p, 'b', 8, 0, "r")); // /dev/sda
        assert!(run(&p, 'b', 8, 0, "m")); // mknod of any block device
        assert!(!run(&p, 'b', 8, 0, "rm"));
        assert!(run(&p, 'c', 5, 1, "r")); // console readable ...
        assert!(!run(&p, 'c', 5, 1, "w")); // ... but the later deny drops write
        assert!(!run(&p, 'c', 5, 1, "rw"));
    }

    #[test]
    fn program_allow_all_and_empty() {
        let p = DeviceProgram::from_rules(&rules(r#"[{"allow": true, "access": "rwm"}]"#));
        assert!(run(&p, 'b', 8, 0, "rwm"));
        // Separate allows for r and w add up, as v1's per-device access sets do.
        let p = DeviceProgram::from_rules(&rules(
            r#"[{"allow": true, "type": "c", "major": 4, "minor": 1, "access": "r"},
                {"allow": true, "type": "c", "major": 4, "minor": 1, "access": "w"}]"#,
        ));
        assert!(run(&p, 'c', 4, 1, "rw"));
        assert!(!run(&p, 'c', 4, 1, "rwm"));
        assert!(!run(&p, 'b', 4, 1, "r"));
        let p = DeviceProgram::from_rules(&[]);
        assert!(!run(&p, 'c', 1, 3, "r"));
        // A rule before an allow-all catch-all is unreachable.
        let p = DeviceProgram::from_rules(&rules(
            r#"[{"allow": false, "type": "c", "major": 1, "minor": 3}, {"allow": true}]"#,
        ));
        assert!(run(&p, 'c', 1, 3, "r"));
        // ... but after it, it wins.
        let p = DeviceProgram::from_rules(&rules(
            r#"[{"allow": true}, {"allow": false, "type": "c", "major": 1, "minor": 3}]"#,
        ));
        assert!(!run(&p, 'c', 1, 3, "r"));
        assert!(run(&p, 'c', 1, 5, "r"));
    }

    #[test]
    fn rule_validation() {
        let bad = |j: &str| {
            let spec: Vec<LinuxDeviceCgroup> = serde_json::from_str(j).unwrap();
            parse_rules(&spec).unwrap_err().to_string()
        };
        assert!(
            bad(r#"[{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rx"}]"#)
                .contains("access")
        );
        assert!(
            bad(r#"[{"allow": true, "type": "c", "major": 5000, "minor": 3}]"#).contains("major")
        );
        assert!(
            bad(r#"[{"allow": true, "type": "c", "major": 1, "minor": -4}]"#).contains("minor")
        );
        // fifo rules are dropped, unbuffered char is char.
        let r = rules(
            r#"[{"allow": true, "type": "p"}, {"allow": true, "type": "u", "major": 4, "minor": 1, "access": "r"}]"#,
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].v1_line(), "c 4:1 r");
    }

    #[test]
    fn encoding_is_little_endian_bpf_insn() {
        // r0 = 1; exit  ==  b7 00 00 00 01 00 00 00 | 95 00 00 00 00 00 00 00
        let p = DeviceProgram::from_rules(&rules(r#"[{"allow": true}]"#));
        let bytes = p.to_bytes();
        assert_eq!(
            &bytes[bytes.len() - 16..],
            &[0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]
        );
        // r2 = *(u32 *)(r1 + 0): 61 12 00 00 00 00 00 00
        assert_eq!(&bytes[..8], &[0x61, 0x12, 0, 0, 0, 0, 0, 0]);
    }
}
