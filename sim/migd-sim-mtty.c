/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The mtty sample (samples/vfio-mdev/mtty.c): struct mtty_data, a 24-byte header
 * sent in PRE_COPY and one 36-byte struct serial_port per port appended on
 * entering STOP_COPY; the port state is the 16550 registers and loop-back FIFO
 * that region accesses drive (handle_bar_write/read). Checked against what Linux 6.12's mtty
 * answered (real-kernel-mtty.md).
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

/* include/uapi/linux/serial_reg.h */
#define UART_RX		 0 /* in: receive buffer (DLAB: divisor LSB) */
#define UART_TX		 0 /* out: transmit holding (DLAB: divisor LSB) */
#define UART_IER	 1 /* (DLAB: divisor MSB) */
#define UART_IIR	 2 /* in */
#define UART_FCR	 2 /* out */
#define UART_LCR	 3
#define UART_MCR	 4
#define UART_LSR	 5
#define UART_MSR	 6
#define UART_SCR	 7
#define UART_IER_RDI	 0x01
#define UART_IER_THRI	 0x02
#define UART_IER_RLSI	 0x04
#define UART_IER_MSI	 0x08
#define UART_IIR_NO_INT	 0x01
#define UART_IIR_THRI	 0x02
#define UART_IIR_RDI	 0x04
#define UART_IIR_RLSI	 0x06
#define UART_FCR_ENABLE	 0x01
#define UART_FCR_CLEAR	 0x06 /* CLEAR_RCVR | CLEAR_XMIT */
#define UART_LCR_DLAB	 0x80
#define UART_MCR_DTR	 0x01
#define UART_MCR_RTS	 0x02
#define UART_MCR_AFE	 0x20
#define UART_LSR_DR	 0x01
#define UART_LSR_OE	 0x02
#define UART_LSR_THRE	 0x20
#define UART_LSR_TEMT	 0x40
#define UART_MSR_DCTS	 0x01
#define UART_MSR_DDSR	 0x02
#define UART_MSR_CTS	 0x10
#define UART_MSR_DSR	 0x20
#define UART_MSR_DCD	 0x80
#define MTTY_IO_BAR_SIZE 8
#define MTTY_BAR1_INDEX	 1

/*
 * The loop-back ring as mtty.c keeps it: a THR write stores at head, an RBR
 * read takes from tail, and "empty" is head == tail (so 16 bytes in a full
 * FIFO read as empty, as on the real device).
 */
static void
migd_sim_mtty_gen_port(guint8 *p, guint64 *rng)
{
	static const guint16 divisors[] = {1, 2, 3, 6, 12, 24, 48, 96};
	guint64 r = migd_sim_prng_next(rng);
	guint8 count = (guint8)(r % MTTY_FIFO_SIZE);
	guint8 tail = (guint8)((r >> 8) % MTTY_FIFO_SIZE);
	guint16 divisor = divisors[(r >> 16) % G_N_ELEMENTS(divisors)];

	/* a port a guest has used: 8N1, FIFO on, some bytes not yet read back */
	memset(p, 0, MTTY_PORT_SIZE);
	p[PORT_UART_REG + UART_IER] = (guint8)((r >> 24) & 0x0f);
	p[PORT_UART_REG + UART_LCR] = 0x03;
	p[PORT_UART_REG + UART_MCR] = (guint8)((r >> 28) & 0x0b);
	p[PORT_UART_REG + UART_SCR] = (guint8)(r >> 32);
	migd_sim_fill_bytes(migd_sim_prng_next(rng), 0, p + PORT_FIFO, MTTY_FIFO_SIZE);
	p[PORT_TAIL] = tail;
	p[PORT_HEAD] = (guint8)((tail + count) % MTTY_FIFO_SIZE);
	p[PORT_COUNT] = count;
	memcpy(p + PORT_DIVISOR, &divisor, 2);
	p[PORT_FCR] = UART_FCR_ENABLE;
	p[PORT_MAX_FIFO] = MTTY_FIFO_SIZE;
	/* handle_bar_write(UART_FCR) always ends with trigger level 1 */
	p[PORT_INTR_TRIGGER] = 1;
}

static guint8 *
migd_sim_mtty_port(MigdSimDevice *self, guint index)
{
	MigdSimFlat *flat = self->priv;
	return flat->state + MTTY_HEADER_SIZE + index * MTTY_PORT_SIZE;
}

static gboolean
migd_sim_mtty_fifo_empty(const guint8 *p)
{
	return p[PORT_HEAD] == p[PORT_TAIL];
}

/* handle_bar_write() for the byte @data at register @reg (no interrupts here) */
static void
migd_sim_mtty_bar_write(guint8 *p, guint reg, guint8 data)
{
	guint16 divisor;

	memcpy(&divisor, p + PORT_DIVISOR, 2);
	switch (reg) {
	case UART_TX:
		if (p[PORT_DLAB]) {
			divisor |= data;
			break;
		}
		if (p[PORT_COUNT] < p[PORT_MAX_FIFO]) {
			p[PORT_FIFO + p[PORT_HEAD]] = data;
			p[PORT_COUNT]++;
			p[PORT_HEAD] = (p[PORT_HEAD] + 1) & (MTTY_FIFO_SIZE - 1);
			p[PORT_OVERRUN] = 0;
		} else {
			p[PORT_OVERRUN] = 1;
		}
		break;
	case UART_IER:
		if (p[PORT_DLAB])
			divisor |= (guint16)(data << 8);
		else
			p[PORT_UART_REG + reg] = data;
		break;
	case UART_FCR:
		p[PORT_FCR] = data;
		if (data & UART_FCR_CLEAR) {
			p[PORT_COUNT] = 0;
			p[PORT_HEAD] = 0;
			p[PORT_TAIL] = 0;
		}
		/* mtty computes a level from the trigger bits, then overrides it with 1 */
		p[PORT_INTR_TRIGGER] = 1;
		p[PORT_MAX_FIFO] = (data & UART_FCR_ENABLE) ? MTTY_FIFO_SIZE : 1;
		break;
	case UART_LCR:
		if (data & UART_LCR_DLAB) {
			p[PORT_DLAB] = 1;
			divisor = 0;
		} else {
			p[PORT_DLAB] = 0;
		}
		p[PORT_UART_REG + reg] = data;
		break;
	case UART_MCR:
	case UART_SCR:
		p[PORT_UART_REG + reg] = data;
		break;
	default: /* LSR, MSR: read-only */
		break;
	}
	memcpy(p + PORT_DIVISOR, &divisor, 2);
}

/* handle_bar_read() */
static guint8
migd_sim_mtty_bar_read(guint8 *p, guint reg)
{
	guint16 divisor;
	guint8 ier = p[PORT_UART_REG + UART_IER];
	guint8 v = 0;

	memcpy(&divisor, p + PORT_DIVISOR, 2);
	switch (reg) {
	case UART_RX:
		if (p[PORT_DLAB])
			return (guint8)divisor;
		/* an empty FIFO leaves the kernel's buffer unwritten: 0 here */
		if (!migd_sim_mtty_fifo_empty(p)) {
			v = p[PORT_FIFO + p[PORT_TAIL]];
			p[PORT_COUNT]--;
			p[PORT_TAIL] = (p[PORT_TAIL] + 1) & (MTTY_FIFO_SIZE - 1);
		}
		return v;
	case UART_IER:
		if (p[PORT_DLAB])
			return (guint8)(divisor >> 8);
		return ier & 0x0f;
	case UART_IIR:
		if ((ier & UART_IER_RLSI) && p[PORT_OVERRUN])
			v |= UART_IIR_RLSI;
		if ((ier & UART_IER_RDI) && p[PORT_COUNT] >= p[PORT_INTR_TRIGGER])
			v |= UART_IIR_RDI;
		if ((ier & UART_IER_THRI) && migd_sim_mtty_fifo_empty(p))
			v |= UART_IIR_THRI;
		/* priority 4 (UART_IIR_MSI) is 0x00: nothing to set */
		if (v == 0)
			v = UART_IIR_NO_INT;
		return v | 0xc0;
	case UART_LCR:
	case UART_MCR:
	case UART_SCR:
		return p[PORT_UART_REG + reg];
	case UART_LSR:
		if (!migd_sim_mtty_fifo_empty(p))
			v |= UART_LSR_DR;
		if (p[PORT_OVERRUN])
			v |= UART_LSR_OE;
		if (migd_sim_mtty_fifo_empty(p))
			v |= UART_LSR_TEMT | UART_LSR_THRE;
		return v;
	case UART_MSR:
		v = UART_MSR_DSR | UART_MSR_DDSR | UART_MSR_DCD;
		if (!(p[PORT_UART_REG + UART_MCR] & UART_MCR_AFE) ||
		    p[PORT_COUNT] < p[PORT_MAX_FIFO])
			v |= UART_MSR_CTS | UART_MSR_DCTS;
		return v;
	default:
		return 0;
	}
}

/* mtty_get_region_info(): BAR0 for port 0, BAR1 only on mtty-2 (no config space here) */
static guint64
migd_sim_mtty_region_size(MigdSimDevice *self, guint index)
{
	if (index == 0 || (index == MTTY_BAR1_INDEX && self->config->ports == 2))
		return MTTY_IO_BAR_SIZE;
	return 0;
}

/* mdev_access(): a BAR access uses the first byte only, whatever its width */
static gint
migd_sim_mtty_region_access(MigdSimDevice *self, guint index, guint64 offset, guint8 *buf,
			    gsize len, gboolean is_write)
{
	guint8 *p = migd_sim_mtty_port(self, index);

	if (is_write) {
		migd_sim_mtty_bar_write(p, (guint)offset, buf[0]);
		return 0;
	}
	memset(buf, 0, len);
	buf[0] = migd_sim_mtty_bar_read(p, (guint)offset);
	return 0;
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

/* the guest uses the UART: a byte into a port's FIFO, and the scratch register */
static void
migd_sim_mtty_touch(MigdSimDevice *self, guint8 *d, guint64 n_units)
{
	for (guint64 i = 0; i < n_units; i++) {
		guint64 r = migd_sim_prng_next(&self->rng);
		guint8 *p = d + MTTY_HEADER_SIZE + (r % self->config->ports) * MTTY_PORT_SIZE;
		migd_sim_mtty_bar_write(p, UART_TX, (guint8)(r >> 8));
		migd_sim_mtty_bar_write(p, UART_SCR, (guint8)(r >> 16));
	}
}

#define MIGD_SIM_MTTY_SPEC(nr_ports)                                                               \
	{                                                                                          \
		.size = MTTY_HEADER_SIZE + (nr_ports)*MTTY_PORT_SIZE,                              \
		.precopy_size = MTTY_HEADER_SIZE, .check_len = MTTY_HEADER_SIZE,                   \
		.check = migd_sim_mtty_check, .check_at_crossing = TRUE, .size_check_first = TRUE, \
		.overflow_errno = ENOMEM, .finish = migd_sim_mtty_finish,                          \
		.generate = migd_sim_mtty_generate, .touch = migd_sim_mtty_touch,                  \
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
    .write_precheck = migd_sim_flat_write_precheck,
    .precopy_info = migd_sim_flat_precopy_info,
    .data_size = migd_sim_flat_data_size,
    .digest = migd_sim_flat_digest,
    .touch = migd_sim_flat_touch,
    .region_size = migd_sim_mtty_region_size,
    .region_access = migd_sim_mtty_region_access,
};
