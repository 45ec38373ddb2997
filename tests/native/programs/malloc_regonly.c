/* Leak-checker fixture: a block whose only reference is a register of
 * another thread that is blocked in a system call.
 *
 *   malloc_regonly held     a thread keeps the block's address in r15 (and
 *                           nowhere in memory) while it sits in pause();
 *                           main returns: no leak must be reported
 *   malloc_regonly dropped  the same, but the thread clears r15 first: the
 *                           block really is unreachable and must be reported
 *
 * The address is stored in memory only XOR-masked (not a pointer to a
 * scanner), the thread's stack below its frame is scrubbed, and the asm
 * loads it into r15 and zeroes the masked copy before blocking, so while
 * the thread is in pause() the kernel's saved register set is the only
 * place the pointer exists.  x86_64 only.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MASK 0x5a5a5a5a5a5a5a5aULL

static volatile uintptr_t masked;
static volatile int ready;
static int keep_in_register;
static volatile uint64_t mask_word = MASK;

__attribute__((noinline)) static void scrub_stack(void) {
    volatile char buf[32768];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = 0;
}

__attribute__((noinline)) static void make_block(void) {
    char *p = malloc(3000);
    memset(p, 0x33, 3000);
    masked = (uintptr_t)p ^ MASK;
}

static void *holder(void *arg) {
    (void)arg;
    make_block();
    scrub_stack();
#if defined(__x86_64__)
    /* Every general register but rsp, rbp and r15 is cleared: leftovers of
       malloc and memset in rdi, rdx, ... may point into the block. */
    __asm__ volatile(
        "mov %0, %%r15\n\t"
        "xor %2, %%r15\n\t"          /* r15 = the block's address */
        "movq $0, %0\n\t"            /* forget the masked copy */
        "cmpl $0, %3\n\t"
        "jne 2f\n\t"
        "xor %%r15, %%r15\n\t"       /* "dropped": no reference at all */
        "2:\n\t"
        "xor %%ebx, %%ebx\n\t"
        "xor %%ecx, %%ecx\n\t"
        "xor %%edx, %%edx\n\t"
        "xor %%esi, %%esi\n\t"
        "xor %%edi, %%edi\n\t"
        "xor %%r8d, %%r8d\n\t"
        "xor %%r9d, %%r9d\n\t"
        "xor %%r10d, %%r10d\n\t"
        "xor %%r11d, %%r11d\n\t"
        "xor %%r12d, %%r12d\n\t"
        "xor %%r13d, %%r13d\n\t"
        "xor %%r14d, %%r14d\n\t"
        "movl $1, %1\n\t"            /* ready = 1 */
        "1:\n\t"
        "mov $34, %%eax\n\t"         /* SYS_pause, forever (EINTR loops) */
        "syscall\n\t"
        "jmp 1b\n\t"
        : "+m"(masked), "=m"(ready)
        : "m"(mask_word), "m"(keep_in_register)
        : "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
          "r15", "memory");
#endif
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "held") && strcmp(argv[1], "dropped"))) {
        fprintf(stderr, "usage: %s held|dropped\n", argv[0]);
        return 2;
    }
    keep_in_register = !strcmp(argv[1], "held");
    pthread_t t;
    pthread_create(&t, NULL, holder, NULL);
    while (!ready) usleep(1000);
    usleep(20000);
    printf("done %s\n", argv[1]);
    return 0;   /* exit with the holder thread still blocked */
}
