//! Where to put probes inside a function, found by decoding its machine code.
//!
//! The kernel emulates a few x86 instructions (`push`, `jcc`, `jmp`, `call`,
//! `nop`) instead of single-stepping them out of line, which makes a probe
//! there about 5x cheaper (see the README's performance section).

use iced_x86::{
    Code, Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, OpAccess,
    Register,
};

/// How many leading instructions to search for the stack check.
const PROLOGUE_WINDOW: usize = 6;

/// The offset (from the function's entry) at which to probe its entry.
///
/// Go 1.21+ prologues are `cmp rsp, 16(r14); jbe morestack; push rbp; ...`:
/// the `push rbp` is emulated, and it runs exactly once per call, because the
/// morestack path re-enters the function at its first instruction and passes
/// the `push` only after the check succeeds. Go 1.19 has no `push rbp`, so the
/// probe sits on the emulated `jbe`, which can fire twice for one call when
/// the stack grows; the probes placed there are idempotent. Functions without
/// a stack check (nosplit) are probed at their entry. Argument registers are
/// unchanged at all of these points.
pub fn entry_probe_offset(code: &[u8], address: u64) -> u64 {
    let instructions: Vec<Instruction> = decode(code, address).take(PROLOGUE_WINDOW).collect();
    let Some(branch) = instructions
        .iter()
        .position(|i| i.flow_control() == FlowControl::ConditionalBranch)
    else {
        return 0;
    };
    let next = instructions.get(branch + 1);
    let at = match next {
        Some(push) if push.code() == Code::Push_r64 && push.op0_register() == Register::RBP => push,
        _ => &instructions[branch],
    };
    at.ip() - address
}

/// Whether the kernel emulates the instruction at the start of `code` when
/// a uprobe sits on it (a relative `call`, `jmp` or `jcc`, a `push` of a
/// register, a `nop`), rather than single-stepping it out of line: about 5x
/// cheaper per hit.
pub fn is_emulated(code: &[u8], address: u64) -> bool {
    decode(code, address).next().is_some_and(|i| {
        let relative_branch = matches!(
            i.flow_control(),
            FlowControl::Call | FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch
        ) && matches!(
            i.op0_kind(),
            iced_x86::OpKind::NearBranch64 | iced_x86::OpKind::NearBranch32
        );
        let push = i.code() == Code::Push_r64;
        let nop = matches!(
            i.code(),
            Code::Nopd | Code::Nopq | Code::Nopw | Code::Nop_rm32 | Code::Nop_rm64 | Code::Nop_rm16
        );
        relative_branch || push || nop
    })
}

/// The target of the direct `call` at the start of `code`, if it is one.
pub fn call_target(code: &[u8], address: u64) -> Option<u64> {
    decode(code, address)
        .next()
        .filter(|i| {
            i.flow_control() == FlowControl::Call && i.op0_kind() == iced_x86::OpKind::NearBranch64
        })
        .map(|i| i.near_branch_target())
}

/// Offsets of every `ret` in the function: probes there see its results.
pub fn return_offsets(code: &[u8], address: u64) -> Vec<u64> {
    decode(code, address)
        .filter(|i| i.flow_control() == FlowControl::Return)
        .map(|i| i.ip() - address)
        .collect()
}

/// How far past a call to look for where its result is handed on.
const HANDOFF_WINDOW: usize = 12;

/// The direct calls to `target` in the function: for each, the offsets of the
/// call and of the instruction after it.
pub fn calls_to(code: &[u8], address: u64, target: u64) -> Vec<(u64, u64)> {
    decode(code, address)
        .filter(|i| {
            i.flow_control() == FlowControl::Call && i.op0_kind() == iced_x86::OpKind::NearBranch64
        })
        .filter(|i| i.near_branch_target() == target)
        .map(|i| (i.ip() - address, i.next_ip() - address))
        .collect()
}

/// Where a call's result (RAX) is passed on in RBX to a direct call to
/// `handoff`: the offset of that `CALL`, which the kernel emulates. Starting
/// at `after` (just past the first call), the code must copy RAX to RBX and
/// then reach the call without a branch, another call, or anything else
/// writing RBX. `runtime.newproc.func1` does exactly this with the new
/// goroutine: `newg := newproc1(...); runqput(pp, newg, true)`.
pub fn result_passed_in_rbx(code: &[u8], address: u64, after: u64, handoff: u64) -> Option<u64> {
    let start = usize::try_from(after).ok()?;
    let mut info = InstructionInfoFactory::new();
    let (mut rax_holds, mut rbx_holds) = (true, false);
    for instruction in decode(code.get(start..)?, address + after).take(HANDOFF_WINDOW) {
        match instruction.flow_control() {
            FlowControl::Call if instruction.op0_kind() == iced_x86::OpKind::NearBranch64 => {
                return (rbx_holds && instruction.near_branch_target() == handoff)
                    .then(|| instruction.ip() - address);
            }
            FlowControl::Next => {}
            _ => return None,
        }
        let copies = matches!(instruction.code(), Code::Mov_r64_rm64 | Code::Mov_rm64_r64)
            && instruction.op0_register() == Register::RBX
            && instruction.op1_register() == Register::RAX;
        if copies && rax_holds {
            rbx_holds = true;
            continue;
        }
        for used in info.info(&instruction).used_registers() {
            let written = !matches!(
                used.access(),
                OpAccess::Read | OpAccess::CondRead | OpAccess::NoMemAccess
            );
            match used.register().full_register() {
                Register::RAX if written => rax_holds = false,
                Register::RBX if written => rbx_holds = false,
                _ => {}
            }
        }
    }
    None
}

/// The direct calls in the function: each one's target and return address.
pub fn direct_calls(code: &[u8], address: u64) -> Vec<(u64, u64)> {
    decode(code, address)
        .filter(|i| {
            i.flow_control() == FlowControl::Call && i.op0_kind() == iced_x86::OpKind::NearBranch64
        })
        .map(|i| (i.near_branch_target(), i.next_ip()))
        .collect()
}

/// Addresses of the RIP-relative memory operands in the function (the
/// globals it reads or writes), in order.
pub fn global_references(code: &[u8], address: u64) -> Vec<u64> {
    decode(code, address)
        .filter(|i| i.is_ip_rel_memory_operand())
        .map(|i| i.ip_rel_memory_address())
        .collect()
}

/// The type descriptors a function allocates with `new(T)`: for each direct
/// call to `newobject`, the address a `lea rax, [rip+X]` put in RAX (the
/// register ABI's first argument, the `*_type`), when that is the last write
/// to RAX before the call.
pub fn types_passed_to(code: &[u8], address: u64, newobject: u64) -> Vec<u64> {
    let mut info = InstructionInfoFactory::new();
    let mut rax_type = None;
    let mut found = Vec::new();
    for instruction in decode(code, address) {
        if instruction.flow_control() == FlowControl::Call {
            if instruction.op0_kind() == iced_x86::OpKind::NearBranch64
                && instruction.near_branch_target() == newobject
                && let Some(descriptor) = rax_type
            {
                found.push(descriptor);
            }
            rax_type = None;
            continue;
        }
        if instruction.code() == Code::Lea_r64_m
            && instruction.op0_register() == Register::RAX
            && instruction.is_ip_rel_memory_operand()
        {
            rax_type = Some(instruction.ip_rel_memory_address());
            continue;
        }
        let writes_rax = info.info(&instruction).used_registers().iter().any(|used| {
            used.register().full_register() == Register::RAX
                && !matches!(
                    used.access(),
                    OpAccess::Read | OpAccess::CondRead | OpAccess::NoMemAccess
                )
        });
        if writes_rax || instruction.flow_control() != FlowControl::Next {
            rax_type = None;
        }
    }
    found
}

/// How far after a flag's read its guarded store may come.
const FLAG_STORE_WINDOW: usize = 6;

/// Each byte-sized global the function reads (`cmp byte [rip+F], 0` or
/// `movzx r, byte [rip+F]`) followed closely by a store of a whole word to
/// another global W: `(F, W)`. This is `if flag { word = 0 }` (Go 1.21+
/// `schedinit`) and `word = pick(flag)` (before, in the runtime's `init`).
pub fn flag_guarded_stores(code: &[u8], address: u64) -> Vec<(u64, u64)> {
    let instructions: Vec<Instruction> = decode(code, address).collect();
    let mut found = Vec::new();
    for (at, read) in instructions.iter().enumerate() {
        let reads_flag = read.is_ip_rel_memory_operand()
            && read.memory_size() == iced_x86::MemorySize::UInt8
            && matches!(
                read.mnemonic(),
                iced_x86::Mnemonic::Cmp | iced_x86::Mnemonic::Movzx
            );
        if !reads_flag {
            continue;
        }
        let store = instructions[at + 1..]
            .iter()
            .take(FLAG_STORE_WINDOW)
            .take_while(|i| i.flow_control() != FlowControl::Call)
            .find(|i| {
                i.is_ip_rel_memory_operand()
                    && i.op0_kind() == iced_x86::OpKind::Memory
                    && i.mnemonic() == iced_x86::Mnemonic::Mov
                    && i.memory_size() == iced_x86::MemorySize::UInt64
            });
        if let Some(store) = store {
            found.push((read.ip_rel_memory_address(), store.ip_rel_memory_address()));
        }
    }
    found
}

/// The immediate of the first `cmp reg, imm` in the function: the bound of a
/// table it checks an index against.
pub fn first_compare_bound(code: &[u8], address: u64) -> Option<u64> {
    decode(code, address)
        .find(|i| i.mnemonic() == iced_x86::Mnemonic::Cmp && i.op_count() == 2)
        .filter(|i| i.op0_kind() == iced_x86::OpKind::Register)
        .filter(|i| {
            matches!(
                i.op1_kind(),
                iced_x86::OpKind::Immediate8
                    | iced_x86::OpKind::Immediate8to32
                    | iced_x86::OpKind::Immediate8to64
                    | iced_x86::OpKind::Immediate32
                    | iced_x86::OpKind::Immediate32to64
            )
        })
        .map(|i| i.immediate(1))
}

fn decode(code: &[u8], address: u64) -> impl Iterator<Item = Instruction> + '_ {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    std::iter::from_fn(move || decoder.can_decode().then(|| decoder.decode()))
        .take_while(|i| !i.is_invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    // cmp rsp,[r14+10h]; jbe +0x41c; push rbp; mov rbp,rsp; sub rsp,50h; ret
    const GO121: &[u8] = &[
        0x49, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x1c, 0x04, 0x00, 0x00, 0x55, 0x48, 0x89, 0xe5, 0x48,
        0x83, 0xec, 0x50, 0xc3,
    ];
    // cmp [r14+10h],rsp; jbe; sub rsp,18h; mov [rsp+10h],rbp; lea rbp,[rsp+10h]; ret
    const GO119: &[u8] = &[
        0x49, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0xe9, 0x00, 0x00, 0x00, 0x48, 0x83, 0xec, 0x18, 0x48,
        0x89, 0x6c, 0x24, 0x10, 0x48, 0x8d, 0x6c, 0x24, 0x10, 0xc3,
    ];

    #[test]
    fn probes_push_rbp_after_the_stack_check() {
        assert_eq!(entry_probe_offset(GO121, 0x1000), 10);
    }

    #[test]
    fn probes_the_branch_when_there_is_no_push() {
        assert_eq!(entry_probe_offset(GO119, 0x1000), 4);
    }

    #[test]
    fn nosplit_functions_are_probed_at_entry() {
        // movl 8(sp),di; movl $0xe7,ax; syscall; ret
        let exit = [
            0x8b, 0x7c, 0x24, 0x08, 0xb8, 0xe7, 0, 0, 0, 0x0f, 0x05, 0xc3,
        ];
        assert_eq!(entry_probe_offset(&exit, 0), 0);
        assert_eq!(return_offsets(&exit, 0), vec![11]);
    }

    #[test]
    fn tells_emulated_instructions_from_single_stepped_ones() {
        assert!(is_emulated(&[0x55], 0), "push rbp");
        assert!(is_emulated(&[0xe8, 0x10, 0, 0, 0], 0), "call rel32");
        assert!(is_emulated(&[0x76, 0x10], 0), "jbe rel8");
        assert!(
            !is_emulated(&[0x49, 0x3b, 0x66, 0x10], 0),
            "cmp rsp, [r14+16]"
        );
        assert!(!is_emulated(&[0xc3], 0), "ret");
        assert_eq!(call_target(&[0xe8, 0x10, 0, 0, 0], 0x1000), Some(0x1015));
        assert_eq!(call_target(&[0xff, 0xd2], 0x1000), None, "call rdx");
    }

    #[test]
    fn finds_direct_calls() {
        // call +0x10; call rdx; ret
        let code = [0xe8, 0x10, 0, 0, 0, 0xff, 0xd2, 0xc3];
        assert_eq!(direct_calls(&code, 0x1000), vec![(0x1015, 0x1005)]);
    }

    #[test]
    fn finds_rip_relative_globals() {
        // mov rax,[rip+0x10]; lea rcx,[rip+0x20]; ret
        let code = [
            0x48, 0x8b, 0x05, 0x10, 0, 0, 0, 0x48, 0x8d, 0x0d, 0x20, 0, 0, 0, 0xc3,
        ];
        assert_eq!(global_references(&code, 0x1000), vec![0x1017, 0x102e]);
    }

    // Go 1.23 runtime.newproc.func1 from `CALL newproc1`: call newproc1;
    // mov rdx,[r14+30h]; mov rdx,[rdx+0d0h]; mov rbx,rax; mov ecx,1; mov rax,rdx;
    // nop dword [rax+rax]; call runqput; ret
    const NEWPROC_FUNC1: &[u8] = &[
        0xe8, 0x00, 0x01, 0x00, 0x00, 0x49, 0x8b, 0x56, 0x30, 0x48, 0x8b, 0x92, 0xd0, 0x00, 0x00,
        0x00, 0x48, 0x89, 0xc3, 0xb9, 0x01, 0x00, 0x00, 0x00, 0x48, 0x89, 0xd0, 0x0f, 0x1f, 0x44,
        0x00, 0x00, 0xe8, 0x00, 0x02, 0x00, 0x00, 0xc3,
    ];

    #[test]
    fn follows_newproc1_result_to_runqput() {
        let newproc1 = 0x1000 + 5 + 0x100;
        let runqput = 0x1000 + 37 + 0x200;
        assert_eq!(calls_to(NEWPROC_FUNC1, 0x1000, newproc1), vec![(0, 5)]);
        assert_eq!(
            result_passed_in_rbx(NEWPROC_FUNC1, 0x1000, 5, runqput),
            Some(32)
        );
        // Another callee, or a clobbered RBX, is no handoff.
        assert_eq!(
            result_passed_in_rbx(NEWPROC_FUNC1, 0x1000, 5, runqput + 1),
            None
        );
        let mut clobbered = NEWPROC_FUNC1.to_vec();
        clobbered[19..24].copy_from_slice(&[0xbb, 1, 0, 0, 0]); // mov ebx,1 instead of mov ecx,1
        assert_eq!(result_passed_in_rbx(&clobbered, 0x1000, 5, runqput), None);
    }

    #[test]
    fn finds_the_type_passed_to_newobject() {
        // lea rax,[rip+0x666bd]; nop dword [rax]; call newobject; mov rax,rbx; call newobject; ret
        let code = [
            0x48, 0x8d, 0x05, 0xbd, 0x66, 0x06, 0x00, 0x0f, 0x1f, 0x00, 0xe8, 0x00, 0x01, 0x00,
            0x00, 0x48, 0x89, 0xd8, 0xe8, 0xf8, 0x00, 0x00, 0x00, 0xc3,
        ];
        let newobject = 0x1000 + 15 + 0x100;
        assert_eq!(
            types_passed_to(&code, 0x1000, newobject),
            vec![0x1000 + 7 + 0x666bd]
        );
        assert!(types_passed_to(&code, 0x1000, newobject + 1).is_empty());
    }

    #[test]
    fn finds_the_bound_a_table_is_checked_against() {
        // Go 1.19 runtime.waitReason.String: cmp al,1bh; jb; lea rax,[rip+..]; ...
        let code = [
            0x3c, 0x1b, 0x72, 0x0d, 0x48, 0x8d, 0x05, 0xe8, 0x43, 0x06, 0x00,
        ];
        assert_eq!(first_compare_bound(&code, 0x1000), Some(27));
        assert_eq!(first_compare_bound(&code[2..], 0x1002), None);
    }

    #[test]
    fn finds_a_word_stored_under_a_flag() {
        // Go 1.27 schedinit: cmp byte [rip+0x132b1b],0; je +0xb; mov qword [rip+0x132b64],0
        let code = [
            0x80, 0x3d, 0x1b, 0x2b, 0x13, 0x00, 0x00, 0x74, 0x0b, 0x48, 0xc7, 0x05, 0x64, 0x2b,
            0x13, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(
            flag_guarded_stores(&code, 0x1000),
            vec![(0x1000 + 7 + 0x132b1b, 0x1000 + 20 + 0x132b64)]
        );
        assert!(flag_guarded_stores(&code[..9], 0x1000).is_empty());
    }

    #[test]
    fn finds_every_return() {
        assert_eq!(return_offsets(GO121, 0), vec![18]);
        assert_eq!(return_offsets(&[0xc3, 0x90, 0xc3], 0), vec![0, 2]);
        assert!(return_offsets(&[], 0).is_empty());
    }
}
