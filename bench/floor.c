/* The machine's floors, for bench/run.sh.
 *
 *   floor spawn MODULE CONCURRENCY COUNT
 *     posix_spawn MODULE with stdin/stdout pipes, write "hello", close stdin,
 *     read stdout to EOF, wait; COUNT times, in CONCURRENCY processes at once.
 *     Prints spawns_per_sec=N.
 *   floor pipe SIZE COUNT
 *     push SIZE bytes through `cat` over pipes (write and read at once) COUNT
 *     times. Prints mb_per_sec=N (payload megabytes per second).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static double now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

/* Runs one child: writes `in` (len bytes) to its stdin while reading its
 * stdout; returns the number of bytes read, or -1. */
static long run(char *const argv[], const char *in, size_t len, char *out, size_t cap) {
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC)) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, to[0], 0);
    posix_spawn_file_actions_adddup2(&fa, from[1], 1);
    pid_t pid;
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ)) return -1;
    posix_spawn_file_actions_destroy(&fa);
    close(to[0]);
    close(from[1]);
    size_t sent = 0, got = 0;
    int open_in = 1;
    if (len == 0) { close(to[1]); open_in = 0; }
    for (;;) {
        struct pollfd p[2] = {{from[0], POLLIN, 0}, {open_in ? to[1] : -1, POLLOUT, 0}};
        poll(p, 2, -1);
        if (p[1].revents & (POLLOUT | POLLERR)) {
            ssize_t n = write(to[1], in + sent, len - sent > 65536 ? 65536 : len - sent);
            if (n > 0) sent += n;
            if (n < 0 || sent == len) { close(to[1]); open_in = 0; }
        }
        if (p[0].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(from[0], out + got, cap - got);
            if (n <= 0) break;
            got += n;
        }
    }
    close(from[0]);
    int status;
    waitpid(pid, &status, 0);
    return got;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN); /* a module may exit without reading its input */
    if (argc == 5 && !strcmp(argv[1], "spawn")) {
        int conc = atoi(argv[3]);
        long count = atol(argv[4]);
        char *child_argv[] = {argv[2], NULL};
        double start = now();
        for (int w = 0; w < conc; w++) {
            if (fork() == 0) {
                char out[64];
                int bad = 0;
                for (long i = w; i < count; i += conc)
                    bad |= run(child_argv, "hello", 5, out, sizeof out) != 4 || memcmp(out, "Test", 4);
                _exit(bad);
            }
        }
        int status, failed = 0;
        while (wait(&status) > 0) failed |= !WIFEXITED(status) || WEXITSTATUS(status);
        if (failed) { fprintf(stderr, "floor: a spawn failed or answered wrong\n"); return 1; }
        printf("spawns_per_sec=%.0f\n", count / (now() - start));
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "pipe")) {
        size_t size = atol(argv[2]);
        long count = atol(argv[3]);
        char *in = malloc(size), *out = malloc(size + 1);
        memset(in, 'x', size);
        char *child_argv[] = {"/bin/cat", NULL};
        double start = now();
        for (long i = 0; i < count; i++) {
            if (run(child_argv, in, size, out, size + 1) != (long)size) { fprintf(stderr, "short read\n"); return 1; }
        }
        printf("mb_per_sec=%.1f\n", size * (double)count / 1e6 / (now() - start));
        return 0;
    }
    fprintf(stderr, "usage: floor spawn MODULE CONCURRENCY COUNT | floor pipe SIZE COUNT\n");
    return 2;
}
