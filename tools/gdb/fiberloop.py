# gdb support for fiberloop: list the fibers of every loop in a live process
# or a core file, and show the backtrace of a parked fiber.
#
#   (gdb) source tools/gdb/fiberloop.py
#   (gdb) fiberloop fibers          # every loop's fibers, as Loop::dump prints them
#   (gdb) fiberloop bt 4            # the backtrace of fiber 4, where it parked
#
# A parked fiber's registers sit on its own stack, where jump_fcontext saved
# them (Boost.Context 1.74, x86-64 System V): at the saved stack pointer
# `context`, r12 r13 r14 r15 rbx rbp at +0x08..+0x30 and the return address at
# +0x38; the fiber resumes with rsp = context + 0x40. `fiberloop bt` installs
# an unwinder that, for the duration of one `bt`, makes those the caller of
# the thread's innermost frame: frame #0 is where the thread stopped, and the
# fiber's frames start at #1. It changes no register, so it works on core
# files too. How long a fiber has been parked is counted, as in Loop::dump,
# up to the loop's last poll.

import gdb
import gdb.unwinder

RECORD = "fiberloop::internal::FiberRecord"


def _names(array):
    """The strings of one of fiberloop's name tables (kFiberStateNames, kWaitKindNames):
    read from the process, so that this script says what Loop::dump says."""
    table = gdb.parse_and_eval("'fiberloop::internal::%s'" % array)
    low, high = table.type.range()
    return [table[i].string() for i in range(low, high + 1)]


SAVED = {"r12": 0x08, "r13": 0x10, "r14": 0x18, "r15": 0x20, "rbx": 0x28, "rbp": 0x30}


def _string(value):
    """A std::string's text, without relying on pretty printers."""
    try:
        data = value["_M_dataplus"]["_M_p"]
        length = int(value["_M_string_length"])
        return data.string(length=length) if length else ""
    except gdb.error:
        return str(value)


def _loops():
    """(thread, Scheduler*, lwp, index) for every loop of the process; index is
    the loop's position in its LoopGroup (0 for a lone loop).

    Read from fiberloop's list of loops (Diagnostics, a global): thread-local
    variables are not always readable from a core file."""
    found = []
    threads = {t.ptid[1]: t for t in gdb.selected_inferior().threads()}
    entry = gdb.parse_and_eval("'fiberloop::internal::debug_loop_list'")
    while int(entry) != 0:
        lwp = int(entry["debug_lwp_"])
        index = int(entry["parts_"]["index"])
        found.append((threads.get(lwp), entry["debug_scheduler_"], lwp, index))
        entry = entry["debug_next_"]
    found.reverse()  # oldest first
    return found


def _fibers(core):
    """The loop's live fibers, in spawn order, as FiberRecord* values."""
    record_ptr = gdb.lookup_type(RECORD).pointer()
    head = core["all_"]["head_"]
    node = head["next_"]
    while int(node) != int(head.address):
        yield node.cast(record_ptr)
        node = node["next_"]


def _ticks(time_point):
    """A steady_clock time_point's count (nanoseconds)."""
    return int(time_point["__d"]["__r"])


def _describe(f, core=None):
    states = _names("kFiberStateNames")
    waits = _names("kWaitKindNames")
    state_index = int(f["state"])
    state = states[state_index] if state_index < len(states) else "?"
    line = "fiber %d" % int(f["id"])
    name = _string(f["name"])
    if name:
        line += " '%s'" % name
    if state == "ready" and int(f["context"]) == 0:
        line += " ready (not started)"
    elif state == "parked":
        wait = int(f["waiting_on"])
        what = waits[wait] if wait < len(waits) else "parked"
        detail = int(f["wait_detail"])
        if what in ("reading fd", "writing fd", "waiting its turn on fd"):
            what += " %d" % detail
            call = f["wait_call"]
            if int(call) != 0:
                what += " in " + call.string()
        elif what.startswith("waiting on a") and detail:
            # The primitive's address, as Loop::dump shows it.
            what += " %#x" % (detail & ((1 << 64) - 1))
        elif what == "joining" and detail:
            # As loop/internal/fiber_record.h's join_detail() packs it.
            bits = detail & ((1 << 64) - 1)
            loop = bits >> 48
            what += " fiber %d" % (bits & ((1 << 48) - 1))
            if loop == 0xFFFF:
                what += " of another loop"
            elif loop:
                what += " of loop %d" % (loop - 1)
        parked = ""
        if core is not None:
            # As Loop::dump: measured against the loop's clock at its last poll.
            ms = (_ticks(core["coarse_now_"]) - _ticks(f["parked_at"])) / 1e6
            parked = " %.0f ms" % max(ms, 0)
        line += " parked%s: %s" % (parked, what)
    else:
        line += " " + state
    where = f["spawned_at"]["_M_impl"]
    if int(where) != 0:
        line += " (spawned at %s:%d)" % (where["_M_file_name"].string(), int(where["_M_line"]))
    return line


def _find(fiber_id):
    for thread, core, _, _ in _loops():
        for f in _fibers(core):
            if int(f["id"]) == fiber_id:
                return thread, f
    raise gdb.GdbError("fiberloop: no live fiber %d (see `fiberloop fibers`)" % fiber_id)


class _FrameId:
    """A frame id for gdb < 14, which takes any object with `sp` and `pc`."""

    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


_FrameIdType = getattr(gdb.unwinder, "FrameId", _FrameId)


class _FiberUnwinder(gdb.unwinder.Unwinder):
    """While `context` is set: the caller of frame #0 is the parked fiber."""

    def __init__(self):
        super().__init__("fiberloop")
        self.context = None

    def __call__(self, pending_frame):
        if self.context is None or pending_frame.level() != 0:
            return None
        u64 = gdb.lookup_type("unsigned long").pointer()
        sp = pending_frame.read_register("rsp")
        pc = pending_frame.read_register("rip")
        info = pending_frame.create_unwind_info(_FrameIdType(sp, pc))
        ctx = self.context
        for reg, off in SAVED.items():
            info.add_saved_register(reg, gdb.Value(ctx + off).cast(u64).dereference())
        info.add_saved_register("rip", gdb.Value(ctx + 0x38).cast(u64).dereference())
        info.add_saved_register("rsp", gdb.Value(ctx + 0x40))
        return info


_unwinder = _FiberUnwinder()
gdb.unwinder.register_unwinder(None, _unwinder, replace=True)


class FiberloopCommand(gdb.Command):
    """fiberloop: inspect fiberloop's fibers. See `help fiberloop fibers`, `help fiberloop bt`."""

    def __init__(self):
        super().__init__("fiberloop", gdb.COMMAND_DATA, prefix=True)


class FibersCommand(gdb.Command):
    """List every loop's live fibers: id, name, state, what a parked one waits on, spawn site."""

    def __init__(self):
        super().__init__("fiberloop fibers", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        loops = _loops()
        if not loops:
            print("fiberloop: no thread has a Loop")
        for thread, core, lwp, index in loops:
            fibers = list(_fibers(core))
            where = ("thread %d (LWP %d)" % (thread.num, thread.ptid[1])
                     if thread is not None else "LWP %d" % lwp)
            print("loop %d on %s: %d fibers alive" % (index, where, len(fibers)))
            for f in fibers:
                print("  " + _describe(f, core))


class BacktraceCommand(gdb.Command):
    """fiberloop bt ID: the backtrace of fiber ID where it last switched out.

Frame #0 is where the loop's thread stopped; the fiber's frames start at #1.
A running fiber is the thread itself: use plain `bt`."""

    def __init__(self):
        super().__init__("fiberloop bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        try:
            fiber_id = int(arg.split()[0])
        except (IndexError, ValueError):
            raise gdb.GdbError("usage: fiberloop bt FIBER_ID")
        thread, f = _find(fiber_id)
        context = int(f["context"])
        if int(f["state"]) == 1:  # FiberState::kRunning
            raise gdb.GdbError("fiberloop: fiber %d is running: select its loop's thread and `bt`"
                               % fiber_id)
        if context == 0:
            raise gdb.GdbError("fiberloop: fiber %d has not started: no stack yet" % fiber_id)
        print(_describe(f))
        selected = gdb.selected_thread()
        if thread is not None:
            thread.switch()
        _unwinder.context = context
        gdb.invalidate_cached_frames()
        try:
            gdb.execute("bt")
        finally:
            _unwinder.context = None
            gdb.invalidate_cached_frames()
            selected.switch()


FiberloopCommand()
FibersCommand()
BacktraceCommand()
