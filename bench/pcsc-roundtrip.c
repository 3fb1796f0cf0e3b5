/* PC/SC round-trip timer: connects to a reader through pcsc-lite (T=1, shared), sends the setup
 * APDUs once (e.g. SELECT), then one APDU N times, timing each SCardTransmit with CLOCK_MONOTONIC.
 * Prints {"n":..,"p50_us":..,"p99_us":..,"mean_us":..,"setup_sw":"9000","last_sw":"9000"} on stdout.
 *
 * Build: cc -O2 -o pcsc-roundtrip pcsc-roundtrip.c $(pkg-config --cflags --libs libpcsclite)
 * Usage: pcsc-roundtrip -r READER -n N [-s SETUP_APDU_HEX]... -a APDU_HEX
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <winscard.h>

#define MAX_APDU 65544
#define MAX_SETUP 16

static void usage(void)
{
    fprintf(stderr, "usage: pcsc-roundtrip -r READER -n N [-s SETUP_APDU_HEX]... -a APDU_HEX\n");
    exit(2);
}

/* Hex with optional spaces or colons between bytes; returns the length or -1. */
static long parse_hex(const char *text, unsigned char *out, size_t capacity)
{
    size_t length = 0;
    int high = -1;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == ' ' || *p == ':')
            continue;
        if (!isxdigit((unsigned char) *p))
            return -1;
        int nibble = isdigit((unsigned char) *p) ? *p - '0' : (tolower((unsigned char) *p) - 'a' + 10);
        if (high < 0) {
            high = nibble;
        } else {
            if (length >= capacity)
                return -1;
            out[length++] = (unsigned char) ((high << 4) | nibble);
            high = -1;
        }
    }
    return (high >= 0 || length < 4) ? -1 : (long) length;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double percentile(const double *sorted, long n, double p)
{
    long rank = (long) ((p / 100.0) * (double) n + 0.999999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static void check(LONG rv, const char *what)
{
    if (rv != SCARD_S_SUCCESS) {
        fprintf(stderr, "pcsc-roundtrip: %s failed: %s (0x%08lX)\n", what, pcsc_stringify_error(rv), (unsigned long) rv);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    const char *reader = NULL, *apdu_hex = NULL;
    const char *setup_hex[MAX_SETUP];
    int setup_count = 0, opt;
    long n = 0;

    while ((opt = getopt(argc, argv, "r:n:s:a:")) != -1) {
        switch (opt) {
        case 'r': reader = optarg; break;
        case 'n': n = strtol(optarg, NULL, 10); break;
        case 's':
            if (setup_count == MAX_SETUP)
                usage();
            setup_hex[setup_count++] = optarg;
            break;
        case 'a': apdu_hex = optarg; break;
        default: usage();
        }
    }
    if (reader == NULL || apdu_hex == NULL || n < 1 || n > 10000000)
        usage();

    static unsigned char command[MAX_APDU], response[MAX_APDU];
    SCARDCONTEXT context;
    SCARDHANDLE card;
    DWORD protocol, response_length;
    char setup_sw[8] = "", last_sw[8] = "";

    check(SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &context), "SCardEstablishContext");
    check(SCardConnect(context, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &protocol), "SCardConnect");

    for (int i = 0; i < setup_count; i++) {
        long length = parse_hex(setup_hex[i], command, sizeof command);
        if (length < 0) {
            fprintf(stderr, "pcsc-roundtrip: expected a hex APDU of at least 4 bytes for -s, got \"%s\"\n", setup_hex[i]);
            return 2;
        }
        response_length = sizeof response;
        check(SCardTransmit(card, SCARD_PCI_T1, command, (DWORD) length, NULL, response, &response_length), "SCardTransmit (setup)");
        if (response_length >= 2)
            snprintf(setup_sw, sizeof setup_sw, "%02X%02X", response[response_length - 2], response[response_length - 1]);
    }

    long length = parse_hex(apdu_hex, command, sizeof command);
    if (length < 0) {
        fprintf(stderr, "pcsc-roundtrip: expected a hex APDU of at least 4 bytes for -a, got \"%s\"\n", apdu_hex);
        return 2;
    }
    double *micros = malloc(sizeof(double) * (size_t) n);
    if (micros == NULL) {
        fprintf(stderr, "pcsc-roundtrip: out of memory\n");
        return 1;
    }
    double total = 0;
    for (long i = 0; i < n; i++) {
        struct timespec before, after;
        response_length = sizeof response;
        clock_gettime(CLOCK_MONOTONIC, &before);
        LONG rv = SCardTransmit(card, SCARD_PCI_T1, command, (DWORD) length, NULL, response, &response_length);
        clock_gettime(CLOCK_MONOTONIC, &after);
        check(rv, "SCardTransmit");
        micros[i] = (double) (after.tv_sec - before.tv_sec) * 1e6 + (double) (after.tv_nsec - before.tv_nsec) / 1e3;
        total += micros[i];
        if (response_length >= 2)
            snprintf(last_sw, sizeof last_sw, "%02X%02X", response[response_length - 2], response[response_length - 1]);
    }

    SCardDisconnect(card, SCARD_LEAVE_CARD);
    SCardReleaseContext(context);

    qsort(micros, (size_t) n, sizeof(double), compare_double);
    printf("{\"n\":%ld,\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,\"setup_sw\":\"%s\",\"last_sw\":\"%s\"}\n",
           n, percentile(micros, n, 50), percentile(micros, n, 99), total / (double) n, setup_sw, last_sw);
    free(micros);
    return 0;
}
