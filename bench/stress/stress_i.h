/* pfs-stress internals: shared between the CLI, the writer, the journal and
 * the verifier. Not installed; pfs-stress is an ordinary application and
 * links neither the allocator nor FUSE. */
#ifndef PFS_STRESS_I_H
#define PFS_STRESS_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* ---- block format (stress_block.c) ------------------------------------
 *
 * Every block is self-describing, little-endian on disk:
 *   off 0   u64 magic "PFSBLK01"
 *   off 8   u32 file number
 *   off 12  u32 block size
 *   off 16  u64 block number in the file
 *   off 24  u64 generation (1 = first write)
 *   off 32  u64 run seed
 *   off 40  payload: bytes from a PRNG seeded by (seed, file, block, gen)
 *   end-8   u32 generation, low 32 bits (a second copy: shows mixed halves)
 *   end-4   u32 CRC32C over everything before it
 * A reader tells apart: all zeros (a hole), a valid block of generation G
 * for the expected (seed, file, block, size), or anything else (bad). */
#define STRESS_BLOCK_MAGIC   UINT64_C(0x31304b4c42534650) /* "PFSBLK01" */
#define STRESS_BLOCK_HEADER  40u
#define STRESS_BLOCK_TRAILER 8u
#define STRESS_BLOCK_MIN     512u
#define STRESS_BLOCK_MAX     (16u << 20)

struct stress_block_id {
	uint64_t seed;
	uint32_t file;
	uint32_t block_size;
	uint64_t block;
	uint64_t gen;
};

enum stress_block_kind {
	STRESS_BLOCK_HOLE,  /* every byte zero */
	STRESS_BLOCK_VALID, /* checksum and identity match; *gen_out set */
	STRESS_BLOCK_BAD,   /* bad checksum, foreign identity or garbage */
};

uint32_t stress_crc32c(uint32_t crc, const void *buf, size_t len);
void stress_block_fill(void *buf, const struct stress_block_id *id);
enum stress_block_kind stress_block_inspect(const void *buf, const struct stress_block_id *expect,
					    uint64_t *gen_out);

/* ---- journal (stress_journal.c) -----------------------------------------
 *
 * One text line per record, each written with exactly one write() to a file
 * opened O_APPEND, so concurrent threads never interleave and a crash leaves
 * at most one partial last line (which readers ignore).
 *   S start v=1 seed=S threads=N files=N file_size=B block=B fsync_every=N
 *       on_error=M overwrite_pct=P t_us=T
 *   O <file> <ret> <errno> <t_us> <lat_us>           open(O_CREAT) returned
 *   I <file> <block> <gen> <t_us>                    about to pwrite (intent)
 *   W <file> <block> <gen> <ret> <errno> <t_us> <lat_us>   pwrite returned
 *   F <file> <ret> <errno> <t_us> <lat_us>           fsync returned
 *   E end reason=R t_us=T
 * ret is what the call returned (bytes for W, 0 or -1 otherwise); errno is 0
 * unless ret is -1. W and F are written only after the call returned; the I
 * record exists so that a write in flight when everything died is known. */
enum stress_record_type {
	STRESS_REC_START = 'S',
	STRESS_REC_OPEN = 'O',
	STRESS_REC_INTENT = 'I',
	STRESS_REC_WRITE = 'W',
	STRESS_REC_FSYNC = 'F',
	STRESS_REC_END = 'E',
};

struct stress_geometry {
	uint64_t seed;
	uint32_t files;
	uint32_t block_size;
	uint64_t file_size;
};

struct stress_record {
	char type;
	uint32_t file;
	uint64_t block;
	uint64_t gen;
	int64_t ret;
	int err;
	uint64_t t_us;
	uint64_t lat_us;
};

struct stress_journal {
	int fd;
};

int stress_journal_open(struct stress_journal *j, const char *path);
void stress_journal_close(struct stress_journal *j);
int stress_journal_append(struct stress_journal *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int stress_record_parse(const char *line, size_t len, struct stress_record *rec);
int stress_record_parse_start(const char *line, size_t len, struct stress_geometry *geo);

/* ---- latency histogram and errno counts (stress_summary.c) ------------- */
#define STRESS_LAT_BUCKETS 1024
#define STRESS_ERRNO_MAX   256

struct stress_latency {
	uint64_t count;
	uint64_t max_us;
	uint64_t bucket[STRESS_LAT_BUCKETS];
};

void stress_latency_add(struct stress_latency *lat, uint64_t us);
void stress_latency_merge(struct stress_latency *into, const struct stress_latency *from);
uint64_t stress_latency_percentile(const struct stress_latency *lat, double pct);
const char *stress_errno_name(int err, char *buf, size_t len);

/* Counters of one writer thread; the summary adds them up. */
struct stress_counters {
	uint64_t writes_ok;
	uint64_t short_writes;
	uint64_t fsyncs_ok;
	uint64_t retries;
	uint64_t bytes_acked;
	uint64_t bytes_refused;
	uint64_t open_errors;
	uint64_t enotconn;
	uint64_t write_errors[STRESS_ERRNO_MAX];
	uint64_t fsync_errors[STRESS_ERRNO_MAX];
	struct stress_latency write_lat;
	struct stress_latency fsync_lat;
};

void stress_counters_merge(struct stress_counters *into, const struct stress_counters *from);

struct stress_summary {
	struct stress_counters total;
	double duration_s;
	uint64_t stalls;
	uint64_t longest_stall_ms;
	bool hung;
	const char *exit_reason;
};

void stress_summary_print_json(FILE *out, const struct stress_summary *sum);

/* ---- run (stress_writer.c) ---------------------------------------------- */
enum stress_on_error {
	STRESS_ON_ERROR_RETRY,
	STRESS_ON_ERROR_SKIP,
	STRESS_ON_ERROR_EXIT,
};

struct stress_run_config {
	const char *dir;
	const char *journal;
	const char *summary_path; /* NULL: stdout only */
	unsigned threads;
	struct stress_geometry geo;
	unsigned duration_s;
	unsigned fsync_every; /* 0 = never */
	enum stress_on_error on_error;
	unsigned overwrite_pct;
	unsigned stall_secs;
	bool quiet;
};

/* Exit statuses of pfs-stress. */
enum {
	STRESS_EXIT_OK = 0,
	STRESS_EXIT_FAILURE = 1, /* setup failure (run); invariant broken (verify) */
	STRESS_EXIT_USAGE = 2,
	STRESS_EXIT_GAVE_UP = 3, /* --on-error exit triggered */
	STRESS_EXIT_HUNG = 4,
};

const char *stress_on_error_name(enum stress_on_error mode);
int stress_run_execute(const struct stress_run_config *cfg);

/* ---- a run's shared state (stress_run.c owns it, stress_writer.c's
 * threads use it) --------------------------------------------------------
 * Lock order: none. A thread's lock and the run's stall_lock are never held
 * together; the journal needs no lock (one O_APPEND write() per record). */
enum stress_stop {
	STRESS_STOP_NONE,
	STRESS_STOP_ON_ERROR_EXIT,
	STRESS_STOP_JOURNAL,
	STRESS_STOP_SETUP,
};

struct stress_file {
	uint32_t number;
	int fd; /* -1 when never opened or dropped */
	uint64_t nblocks;
	uint64_t *gen; /* last generation attempted per block */
	uint64_t acked_since_fsync;
};

struct stress_thread {
	struct stress_run *run;
	unsigned index;
	pthread_t tid;
	uint64_t rng;
	struct stress_file *files;
	unsigned nfiles;
	unsigned cursor_file;
	uint64_t cursor_block;
	uint8_t *buf;
	bool dead; /* the mount died under this thread */
	atomic_bool finished;
	/* Protects counters, call_start_us and call_stall_counted: the writer
	 * updates them around each call, the watchdog reads them. */
	pthread_mutex_t lock;
	struct stress_counters counters;
	uint64_t call_start_us; /* 0 = not in a system call */
	bool call_stall_counted;
};

struct stress_run {
	const struct stress_run_config *cfg;
	struct stress_journal journal;
	struct timespec t0;
	uint64_t end_us;
	uint64_t stall_us;
	atomic_int stop; /* enum stress_stop: set once, by the first */
	/* Protects stalls and longest_stall_us (threads and watchdog). */
	pthread_mutex_t stall_lock;
	uint64_t stalls;
	uint64_t longest_stall_us;
	struct stress_thread *threads;
	unsigned started; /* threads[0..started) are running */
	/* The previous progress line (main thread only). */
	uint64_t progress_us, progress_bytes, progress_ops;
};

uint64_t stress_run_now_us(const struct stress_run *run);
void stress_run_stall_note(struct stress_run *run, uint64_t us, bool count);
int stress_thread_setup(struct stress_run *run, struct stress_thread *t, unsigned index);
void stress_thread_free(struct stress_thread *t);
void *stress_thread_main(void *arg);

/* ---- verify (stress_verify.c, output in stress_verify_print.c) ---------- */
enum stress_class {
	STRESS_CLASS_TORN_OR_CORRUPT,
	STRESS_CLASS_LOST_AFTER_FSYNC,
	STRESS_CLASS_LOST_AFTER_WRITE,
	STRESS_CLASS_REFUSED,
	STRESS_CLASS_INTACT,
	STRESS_CLASS_COUNT,
};

#define STRESS_VERIFY_EXAMPLES 8

struct stress_verify_example {
	enum stress_class cls;
	uint32_t file;
	uint64_t block;
	uint64_t acked_gen;   /* latest acknowledged generation */
	uint64_t fsynced_gen; /* latest generation covered by a good fsync */
	int64_t found_gen;    /* generation on disk; 0 hole; -1 unreadable/mixed */
};

struct stress_verify_result {
	struct stress_geometry geo;
	uint64_t blocks; /* blocks the journal mentions */
	uint64_t count[STRESS_CLASS_COUNT];
	uint64_t bytes[STRESS_CLASS_COUNT];
	uint64_t torn_fsynced; /* torn blocks whose last write an fsync covered */
	uint64_t torn_unfsynced;
	uint64_t journal_records;
	uint64_t journal_bad_lines; /* complete lines that did not parse */
	bool journal_partial_tail;  /* an unterminated last line was ignored */
	bool journal_ended;	    /* an E record was seen: the run finished */
	unsigned examples;
	struct stress_verify_example example[STRESS_VERIFY_EXAMPLES];
};

/*
 * What a successful fsync promises about writes acknowledged before a FAILED
 * fsync of the same file:
 *   STRICT  (default: the contract pressurefs' README states) it covers
 *           them too: an fsync that returns 0 covers every byte written to
 *           the file before it, through any descriptor, even after an
 *           earlier fsync failed (EIO/ENOSPC: reported once per open
 *           descriptor while pressurefs keeps the data dirty and retries
 *           it; ENOMEM: the fsync's own write-back got no memory, the data
 *           stays dirty).
 *   ERRSEQ  it does not (Linux's errseq semantics: the failed fsync consumed
 *           the error and the pages may have been dropped) — for checking
 *           other filesystems without blaming them for that.
 */
enum stress_fsync_promise {
	STRESS_FSYNC_STRICT,
	STRESS_FSYNC_ERRSEQ,
};

struct stress_verify_options {
	enum stress_fsync_promise promise;
};

const char *stress_class_name(enum stress_class cls);
/* opts NULL = the defaults (STRICT). */
int stress_verify_run(const char *dir, const char *journal_path,
		      const struct stress_verify_options *opts, struct stress_verify_result *res,
		      char *why, size_t why_len);
bool stress_verify_invariant_holds(const struct stress_verify_result *res);
void stress_verify_print_table(FILE *out, const struct stress_verify_result *res);
void stress_verify_print_json(FILE *out, const struct stress_verify_result *res);

/* ---- CLI (stress_cli.c) --------------------------------------------------- */
int stress_main(int argc, char **argv);
int stress_parse_size(const char *text, uint64_t *out);

#endif /* PFS_STRESS_I_H */
