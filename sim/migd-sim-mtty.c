/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The mtty sample (samples/vfio-mdev/mtty.c): struct mtty_data, a 24-byte header
 * sent in PRE_COPY and one 36-byte struct serial_port per port appended on
 * entering STOP_COPY. Checked against what Linux 6.12's mtty answered
 * (real-kernel-mtty.md).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "migd-sim-flat.h"
#include "migd-sim-prng.h"

#define MTTY_MAGIC	 0x7e9d09898c3e2c4eull
#define MTTY_MAJOR	 1
#define MTTY_MINOR	 0
#define MTTY_HEADER_SIZE 24
#define MTTY_PORT_SIZE	 36
#define MTTY_FIFO_SIZE	 16

/* struct serial_port offsets: uart_reg[8], rxtx {fifo[16], head, tail, count}, ... */
#define PORT_UART_REG	  0
#define PORT_FIFO	  8
#define PORT_HEAD	  24
#define PORT_TAIL	  25
#define PORT_COUNT	  26
#define PORT_DLAB	  27
#define PORT_OVERRUN	  28
#define PORT_DIVISOR	  30
#define PORT_FCR	  32
#define PORT_MAX_FIFO	  33
#define PORT_INTR_TRIGGER 34

static void
migd_sim_mtty_gen_port(guint8 *p, guint64 *rng)
{
	static const guint16 divisors[] = {1, 2, 3, 6, 12, 24, 48, 96};
	static const guint8 triggers[] = {1, 4, 8, 14};
	guint64 r = migd_sim_prng_next(rng);
	guint8 count = (guint8)(r % (MTTY_FIFO_SIZE + 1));
	guint8 head = (guint8)((r >> 8) % MTTY_FIFO_SIZE);
	guint16 divisor = divisors[(r >> 16) % G_N_ELEMENTS(divisors)];

	memset(p, 0, MTTY_PORT_SIZE);
	migd_sim_fill_bytes(migd_sim_prng_next(rng), 0, p + PORT_UART_REG, 8);
	migd_sim_fill_bytes(migd_sim_prng_next(rng), 0, p + PORT_FIFO, MTTY_FIFO_SIZE);
	/* a consistent ring: tail = head + count */
	p[PORT_HEAD] = head;
	p[PORT_TAIL] = (guint8)((head + count) % MTTY_FIFO_SIZE);
	p[PORT_COUNT] = count;
	p[PORT_DLAB] = (r >> 24) & 1;
	p[PORT_OVERRUN] = (r >> 25) & 1;
	memcpy(p + PORT_DIVISOR, &divisor, 2);
	p[PORT_FCR] = (guint8)((r >> 32) & 0xc7);
	p[PORT_MAX_FIFO] = (p[PORT_FCR] & 1) != 0 ? MTTY_FIFO_SIZE : 1;
	p[PORT_INTR_TRIGGER] = triggers[(r >> 40) % G_N_ELEMENTS(triggers)];
}

static void
migd_sim_mtty_generate(MigdSimDevice *self, guint8 *d)
{
	guint64 magic = MTTY_MAGIC;
	guint32 major = MTTY_MAJOR;
	guint32 nr_ports = self->config->ports;
	guint64 rng = self->config->seed;

	memset(d, 0, MTTY_HEADER_SIZE);
	memcpy(d, &magic, 8);
	memcpy(d + 8, &major, 4);
	memcpy(d + 16, &nr_ports, 4);
	for (guint i = 0; i < nr_ports; i++)
		migd_sim_mtty_gen_port(d + MTTY_HEADER_SIZE + i * MTTY_PORT_SIZE, &rng);
}

/* mtty_resume_write(): once the header is in, it must match this device */
static gint
migd_sim_mtty_check(MigdSimDevice *self, const guint8 *d)
{
	guint64 magic;
	guint32 major, minor, nr_ports, flags;

	memcpy(&magic, d, 8);
	memcpy(&major, d + 8, 4);
	memcpy(&minor, d + 12, 4);
	memcpy(&nr_ports, d + 16, 4);
	memcpy(&flags, d + 20, 4);
	if (magic != MTTY_MAGIC || flags != 0 || major != MTTY_MAJOR || minor != MTTY_MINOR ||
	    nr_ports != self->config->ports)
		return EFAULT;
	return 0;
}

static gint
migd_sim_mtty_finish(MigdSimDevice *self, const guint8 *d, gsize len, guint8 *state)
{
	gsize size = MTTY_HEADER_SIZE + MTTY_PORT_SIZE * self->config->ports;

	if (len < size)
		return EINVAL;
	memcpy(state, d, size);
	return 0;
}

/* the guest wrote to the UART: a byte lands in the receive FIFO and a register changes */
static void
migd_sim_mtty_touch(MigdSimDevice *self, guint8 *d, guint64 n_units)
{
	for (guint64 i = 0; i < n_units; i++) {
		guint64 r = migd_sim_prng_next(&self->rng);
		guint8 *p = d + MTTY_HEADER_SIZE + (r % self->config->ports) * MTTY_PORT_SIZE;
		if (p[PORT_COUNT] < MTTY_FIFO_SIZE) {
			p[PORT_FIFO + p[PORT_TAIL]] = (guint8)(r >> 8);
			p[PORT_TAIL] = (p[PORT_TAIL] + 1) % MTTY_FIFO_SIZE;
			p[PORT_COUNT]++;
		} else {
			p[PORT_OVERRUN] = 1;
		}
		p[PORT_UART_REG + (r >> 16) % 8] = (guint8)(r >> 24);
	}
}

#define MIGD_SIM_MTTY_SPEC(nr_ports)                                                               \
	{                                                                                          \
		.size = MTTY_HEADER_SIZE + (nr_ports)*MTTY_PORT_SIZE,                              \
		.precopy_size = MTTY_HEADER_SIZE, .check_len = MTTY_HEADER_SIZE,                   \
		.check = migd_sim_mtty_check, .overflow_errno = ENOMEM,                            \
		.finish = migd_sim_mtty_finish, .generate = migd_sim_mtty_generate,                \
		.touch = migd_sim_mtty_touch,                                                      \
	}

/* types mtty-1 and mtty-2 */
static const MigdSimFlatSpec migd_sim_mtty_specs[2] = {MIGD_SIM_MTTY_SPEC(1),
						       MIGD_SIM_MTTY_SPEC(2)};

static gboolean
migd_sim_mtty_init(MigdSimDevice *self, GError **error)
{
	return migd_sim_flat_init(self, &migd_sim_mtty_specs[self->config->ports == 1 ? 0 : 1],
				  error);
}

const MigdSimBackend migd_sim_mtty_backend = {
    .init = migd_sim_mtty_init,
    .finalize = migd_sim_flat_finalize,
    .arc = migd_sim_flat_arc,
    .read = migd_sim_flat_read,
    .write = migd_sim_flat_write,
    .precopy_info = migd_sim_flat_precopy_info,
    .data_size = migd_sim_flat_data_size,
    .digest = migd_sim_flat_digest,
    .touch = migd_sim_flat_touch,
};
