/*
 * tiny: the program behind the checked-in core (testdata/core.tiny).
 *
 * Static, no C library, a few KB: its own _start, raw system calls, a
 * chain of functions that are never inlined (frame pointers and
 * .eh_frame kept), and a store to an unmapped address at the bottom of
 * the chain, so the kernel writes a core with one thread stopped four
 * calls deep. It maps a little anonymous memory first so the core has
 * an [ anon ] mapping besides the stack, and sets `environ` as a C
 * library would, so the current environment can be found by symbol.
 *
 * Built and run by testdata/make-tiny-core.sh; see there.
 */

#define SYS_write 1
#define SYS_mmap 9
#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_PRIVATE 0x02
#define MAP_ANONYMOUS 0x20

/* What a C library would export: npenv follows it. */
char **environ;

/* The address the store at the bottom of the chain faults on. */
#define FAULT_ADDRESS 0xdead0

static long syscall6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* Each level does a little work after its call, so none is a tail call.
 * The leaf sets up no frame (-momit-leaf-frame-pointer): a frame-pointer
 * walk from it skips parse_request, the .eh_frame walk does not. */
__attribute__((noinline)) int crash_here(int depth)
{
	*(volatile int *)FAULT_ADDRESS = depth;
	return depth + 1;
}

__attribute__((noinline)) int parse_request(int depth)
{
	return crash_here(depth + 1) + 1;
}

__attribute__((noinline)) int handle_request(int depth)
{
	return parse_request(depth + 1) + 1;
}

__attribute__((noinline)) int serve(int argc, char **argv)
{
	char *scratch = (char *)syscall6(SYS_mmap, 0, 3 * 4096, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((long)scratch > 0) {
		scratch[0] = (char)argc;
	}
	return handle_request(argv[0] != 0) + 1;
}

/* Called by _start with the initial stack: argc, argv[], NULL, envp[]. */
__attribute__((noinline, used)) void start_c(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	environ = argv + argc + 1;
	serve(argc, argv);
	syscall6(SYS_write, 2, (long)"tiny: did not crash\n", 20, 0, 0, 0);
	for (;;)
		syscall6(60, 1, 0, 0, 0, 0, 0); /* exit */
}

/* The entry point: the return address is undefined here, so unwinders
 * stop at _start. */
__asm__(".text\n"
	".globl _start\n"
	".type _start,@function\n"
	"_start:\n"
	".cfi_startproc\n"
	".cfi_undefined rip\n"
	"	xor %ebp, %ebp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call start_c\n"
	"	hlt\n"
	".cfi_endproc\n"
	".size _start, .-_start\n");
