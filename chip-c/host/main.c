/*
 * trustprov-chip: one C chip as a program a host reaches (the fixed command lines).
 *
 *   trustprov-chip --nvm FILE [--uid HEX32] [--lot NAME] [--idle-timeout S] --listen pty
 *   trustprov-chip --nvm FILE ... --listen tcp://127.0.0.1:PORT
 *   trustprov-chip --nvm FILE ... --stdio
 *
 * A new NVM file is a blank chip with that fab UID (all zeros by default). When the port is
 * ready the program prints {"port": ADDRESS} on stdout (not with --stdio); SIGTERM or SIGINT
 * stops it. Bad arguments: one line on stderr, exit 2. This file is the platform, not the chip:
 * on silicon the UART driver and the main loop take its place.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "tp/chip.h"
#include "tp/link.h"
#include "tp/ram.h"
#include "tp_hal_flash.h"
#include "tp_hal_trng.h"

extern const uint8_t tp_software_image[];
extern const uint32_t tp_software_image_size;

static volatile sig_atomic_t stopping;
#define chip tp_ram_chip
#define link_state tp_ram_link
static int out_fd = -1;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int usage(const char *why)
{
    fprintf(stderr, "trustprov-chip: %s\n", why);
    return 2;
}

static int hex_decode(const char *hex, uint8_t *out, size_t n)
{
    if (strlen(hex) != 2u * n) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2u * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", hex[2 * i]) ||
            !strchr("0123456789abcdefABCDEF", hex[2 * i + 1])) {
            return -1;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int io_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    while (len > 0u) {
        ssize_t n = write(out_fd, data, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                struct pollfd p = {out_fd, POLLOUT, 0};
                (void)poll(&p, 1, 1000);
                continue;
            }
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int io_stage(void *ctx, size_t offset, const uint8_t *data, size_t len)
{
    (void)ctx;
    return tp_hal_staging_write(offset, data, len);
}

static size_t io_run(void *ctx, size_t len, uint8_t *response, size_t cap)
{
    (void)ctx;
    return tp_chip_run(&chip, tp_hal_staging_map(), len, response, cap);
}

/* serves the link on in_fd until EOF (1), a stop (0) or an error (-1) */
static int serve(int in_fd, uint32_t idle_ms)
{
    uint8_t buf[4096];
    uint64_t last_valid = now_ms();
    uint32_t runs = link_state.requests_run;
    int armed = 0;
    while (!stopping) {
        struct pollfd p = {in_fd, POLLIN, 0};
        int r = poll(&p, 1, 50);
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        if (r > 0) {
            ssize_t n = read(in_fd, buf, sizeof(buf));
            if (n == 0) {
                return 1;
            }
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN) {
                    continue;
                }
                return errno == EIO ? 1 : -1;
            }
            if (tp_link_feed(&link_state, buf, (size_t)n) > 0u) {
                last_valid = now_ms();
            }
            if (link_state.requests_run != runs) {
                runs = link_state.requests_run;
                armed = 1;
            }
        }
        if (armed && now_ms() - last_valid >= idle_ms) {
            tp_chip_idle(&chip);
            armed = 0;
        }
    }
    return 0;
}

static int listen_pty(uint32_t idle_ms)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    struct termios t;
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        return usage("cannot open a pseudo-terminal");
    }
    const char *name = ptsname(master);
    if (name == NULL) {
        return usage("cannot name the pseudo-terminal");
    }
    /* a slave kept open: the master reads no EIO while no host holds the port */
    int keep = open(name, O_RDWR | O_NOCTTY);
    if (keep < 0 || tcgetattr(keep, &t) != 0) {
        return usage("cannot open the pseudo-terminal's slave");
    }
    cfmakeraw(&t);
    (void)tcsetattr(keep, TCSANOW, &t);
    out_fd = master;
    printf("{\"port\": \"serial://%s\"}\n", name);
    fflush(stdout);
    int rc;
    do {
        rc = serve(master, idle_ms);
    } while (rc == 1 && !stopping);
    close(keep);
    close(master);
    return rc < 0 ? 1 : 0;
}

static int listen_tcp(const char *spec, uint32_t idle_ms)
{
    const char *prefix = "tcp://127.0.0.1:";
    char *end;
    if (strncmp(spec, prefix, strlen(prefix)) != 0) {
        return usage("--listen takes pty or tcp://127.0.0.1:PORT");
    }
    long port = strtol(spec + strlen(prefix), &end, 10);
    if (*end != '\0' || end == spec + strlen(prefix) || port < 0 || port > 65535) {
        return usage("--listen: bad port");
    }
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(s, 1) != 0 ||
        getsockname(s, (struct sockaddr *)&addr, &alen) != 0) {
        return usage("--listen: cannot listen on that port");
    }
    printf("{\"port\": \"tcp://127.0.0.1:%u\"}\n", (unsigned)ntohs(addr.sin_port));
    fflush(stdout);
    while (!stopping) {
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) {
            continue;
        }
        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            continue;
        }
        (void)setsockopt(c, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof(one));
        out_fd = c;
        (void)serve(c, idle_ms);
        close(c);
    }
    close(s);
    return 0;
}

int main(int argc, char **argv)
{
    const char *nvm = NULL;
    const char *listen_on = NULL;
    const char *lot = "chip-c";
    int use_stdio = 0;
    int uid_given = 0;
    uint8_t uid[TP_UID_LEN] = {0};
    double idle_s = TP_IDLE_TIMEOUT_MS / 1000.0;
#ifdef TP_TEST_TRNG
    uint8_t label[128];
    size_t label_len = 0;
    static uint8_t test_code[65536];
    size_t test_code_len = 0;
    int test_code_given = 0;
#endif

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--stdio") == 0) {
            use_stdio = 1;
            continue;
        }
        if (v == NULL) {
            return usage("every option but --stdio takes a value");
        }
        i++;
        if (strcmp(a, "--nvm") == 0) {
            nvm = v;
        } else if (strcmp(a, "--uid") == 0) {
            if (hex_decode(v, uid, sizeof(uid)) != 0) {
                return usage("--uid takes 32 hex digits");
            }
            uid_given = 1;
        } else if (strcmp(a, "--lot") == 0) {
            if (strlen(v) == 0u || strlen(v) > TP_MAX_LOT) {
                return usage("--lot takes 1 to 64 bytes");
            }
            lot = v;
        } else if (strcmp(a, "--listen") == 0) {
            listen_on = v;
        } else if (strcmp(a, "--idle-timeout") == 0) {
            char *end;
            idle_s = strtod(v, &end);
            if (*end != '\0' || !(idle_s > 0.0) || idle_s > 86400.0) {
                return usage("--idle-timeout takes seconds (0 < S <= 86400)");
            }
#ifdef TP_TEST_TRNG
        } else if (strcmp(a, "--test-trng-label") == 0) {
            label_len = strlen(v) / 2u;
            if (label_len > sizeof(label) || hex_decode(v, label, label_len) != 0) {
                return usage("--test-trng-label takes hex");
            }
        } else if (strcmp(a, "--test-code") == 0) {
            /* the firmware image to measure instead of this build's (protocol.md 8.5) */
            FILE *f = fopen(v, "rb");
            if (f == NULL) {
                return usage("--test-code: cannot read that file");
            }
            test_code_len = fread(test_code, 1, sizeof(test_code), f);
            fclose(f);
            test_code_given = 1;
#endif
        } else {
            return usage("unknown option (see the header of host/main.c)");
        }
    }
    if (nvm == NULL) {
        return usage("--nvm FILE is required");
    }
    if ((listen_on == NULL) == !use_stdio) {
        return usage("give exactly one of --listen pty|tcp://127.0.0.1:PORT and --stdio");
    }
    if (listen_on != NULL && strcmp(listen_on, "pty") != 0 && strncmp(listen_on, "tcp://", 6) != 0) {
        return usage("--listen takes pty or tcp://127.0.0.1:PORT");
    }
    int created = tp_flash_file_open(nvm);
    if (created < 0) {
        return usage("--nvm: cannot open or create that NVM file (or it is not one)");
    }
    tp_persist nv;
    int loaded = tp_nvm_load(&nv);
    if (loaded < 0) {
        return usage("--nvm: the file holds no chip state this program can read");
    }
    if (loaded == 1) {
        tp_persist blank;
        memset(&blank, 0, sizeof(blank));
        memcpy(blank.uid, uid, sizeof(uid));
        blank.lot_len = (uint8_t)strlen(lot);
        memcpy(blank.lot, lot, blank.lot_len);
        if (tp_nvm_commit(&nv, &blank, NULL, 0) != 0) {
            return usage("--nvm: cannot write the new chip");
        }
    } else if (uid_given && memcmp(nv.uid, uid, sizeof(uid)) != 0) {
        return usage("--uid: the NVM file holds another chip");
    }
    uint8_t boot_id[4];
    if (tp_hal_trng(boot_id, sizeof(boot_id)) != 0) {
        return usage("no TRNG");
    }
#ifdef TP_TEST_TRNG
    if (label_len > 0u) {
        tp_trng_test_stream(label, label_len);
    }
#endif
    tp_chip_power_on(&chip, &nv, tp_software_image, tp_software_image_size);
#ifdef TP_TEST_TRNG
    if (test_code_given) {
        chip.code = test_code;
        chip.code_len = test_code_len;
    }
#endif
    tp_link_io io = {io_write, io_stage, io_run, NULL};
    tp_link_init(&link_state, &io, boot_id);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    uint32_t idle_ms = (uint32_t)(idle_s * 1000.0);
    if (use_stdio) {
        out_fd = STDOUT_FILENO;
        return serve(STDIN_FILENO, idle_ms) < 0 ? 1 : 0;
    }
    if (strcmp(listen_on, "pty") == 0) {
        return listen_pty(idle_ms);
    }
    return listen_tcp(listen_on, idle_ms);
}
