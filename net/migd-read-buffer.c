/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Two small GIO classes: MigdReadBufferInput, a pollable input stream that serves reads
 * from a buffer refilled by one large read of the base, and MigdReadBufferStream, the
 * GIOStream that pairs it with the base's output. The pollable side follows
 * GConverterInputStream: while the buffer holds bytes, its source is ready at once.
 */
#include "config.h"

#include <string.h>

#include "migd-read-buffer.h"

/* ---- the input stream ---- */

#define MIGD_TYPE_READ_BUFFER_INPUT (migd_read_buffer_input_get_type())
G_DECLARE_FINAL_TYPE(MigdReadBufferInput, migd_read_buffer_input, MIGD, READ_BUFFER_INPUT,
		     GInputStream)

struct _MigdReadBufferInput {
	GInputStream parent_instance;
	GInputStream *base; /* pollable */
	guint8 *buf;
	gsize size;
	gsize pos; /* buf[pos, len) is not read yet */
	gsize len;
};

static void migd_read_buffer_input_pollable_init(GPollableInputStreamInterface *iface);

G_DEFINE_TYPE_WITH_CODE(MigdReadBufferInput, migd_read_buffer_input, G_TYPE_INPUT_STREAM,
			G_IMPLEMENT_INTERFACE(G_TYPE_POLLABLE_INPUT_STREAM,
					      migd_read_buffer_input_pollable_init))

static gssize
migd_read_buffer_input_take(MigdReadBufferInput *self, void *buffer, gsize count)
{
	gsize n = MIN(count, self->len - self->pos);

	memcpy(buffer, self->buf + self->pos, n);
	self->pos += n;
	return (gssize)n;
}

/* @n bytes were read into the buffer (or an error or the end, n <= 0) */
static gssize
migd_read_buffer_input_refilled(MigdReadBufferInput *self, gssize n, void *buffer, gsize count)
{
	if (n <= 0)
		return n;
	self->pos = 0;
	self->len = (gsize)n;
	return migd_read_buffer_input_take(self, buffer, count);
}

static gssize
migd_read_buffer_input_read(GInputStream *stream, void *buffer, gsize count,
			    GCancellable *cancellable, GError **error)
{
	MigdReadBufferInput *self = MIGD_READ_BUFFER_INPUT(stream);

	if (self->pos < self->len)
		return migd_read_buffer_input_take(self, buffer, count);
	/* a read as large as the buffer gains nothing from it */
	if (count >= self->size)
		return g_input_stream_read(self->base, buffer, count, cancellable, error);
	return migd_read_buffer_input_refilled(
	    self, g_input_stream_read(self->base, self->buf, self->size, cancellable, error),
	    buffer, count);
}

static gssize
migd_read_buffer_input_read_nonblocking(GPollableInputStream *stream, void *buffer, gsize count,
					GError **error)
{
	MigdReadBufferInput *self = MIGD_READ_BUFFER_INPUT(stream);
	GPollableInputStream *base = G_POLLABLE_INPUT_STREAM(self->base);

	if (self->pos < self->len)
		return migd_read_buffer_input_take(self, buffer, count);
	if (count >= self->size)
		return g_pollable_input_stream_read_nonblocking(base, buffer, count, NULL, error);
	return migd_read_buffer_input_refilled(
	    self,
	    g_pollable_input_stream_read_nonblocking(base, self->buf, self->size, NULL, error),
	    buffer, count);
}

static gboolean
migd_read_buffer_input_can_poll(GPollableInputStream *stream)
{
	MigdReadBufferInput *self = MIGD_READ_BUFFER_INPUT(stream);
	return g_pollable_input_stream_can_poll(G_POLLABLE_INPUT_STREAM(self->base));
}

static gboolean
migd_read_buffer_input_is_readable(GPollableInputStream *stream)
{
	MigdReadBufferInput *self = MIGD_READ_BUFFER_INPUT(stream);
	return self->pos < self->len ||
	       g_pollable_input_stream_is_readable(G_POLLABLE_INPUT_STREAM(self->base));
}

static GSource *
migd_read_buffer_input_create_source(GPollableInputStream *stream, GCancellable *cancellable)
{
	MigdReadBufferInput *self = MIGD_READ_BUFFER_INPUT(stream);
	g_autoptr(GSource) base_source = NULL;

	if (self->pos < self->len)
		base_source = g_timeout_source_new(0);
	else
		base_source = g_pollable_input_stream_create_source(
		    G_POLLABLE_INPUT_STREAM(self->base), NULL);
	return g_pollable_source_new_full(stream, base_source, cancellable);
}

/* the base's input belongs to the base stream, which MigdReadBufferStream closes */
static gboolean
migd_read_buffer_input_close(GInputStream *stream, GCancellable *cancellable, GError **error)
{
	return TRUE;
}

static void
migd_read_buffer_input_finalize(GObject *object)
{
	MigdReadBufferInput *self = MIGD_READ_BUFFER_INPUT(object);

	g_clear_object(&self->base);
	g_free(self->buf);
	G_OBJECT_CLASS(migd_read_buffer_input_parent_class)->finalize(object);
}

static void
migd_read_buffer_input_pollable_init(GPollableInputStreamInterface *iface)
{
	iface->can_poll = migd_read_buffer_input_can_poll;
	iface->is_readable = migd_read_buffer_input_is_readable;
	iface->create_source = migd_read_buffer_input_create_source;
	iface->read_nonblocking = migd_read_buffer_input_read_nonblocking;
}

static void
migd_read_buffer_input_class_init(MigdReadBufferInputClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GInputStreamClass *input_class = G_INPUT_STREAM_CLASS(klass);

	object_class->finalize = migd_read_buffer_input_finalize;
	input_class->read_fn = migd_read_buffer_input_read;
	input_class->close_fn = migd_read_buffer_input_close;
}

static void
migd_read_buffer_input_init(MigdReadBufferInput *self)
{
}

/* ---- the stream ---- */

#define MIGD_TYPE_READ_BUFFER_STREAM (migd_read_buffer_stream_get_type())
G_DECLARE_FINAL_TYPE(MigdReadBufferStream, migd_read_buffer_stream, MIGD, READ_BUFFER_STREAM,
		     GIOStream)

struct _MigdReadBufferStream {
	GIOStream parent_instance;
	GIOStream *base;
	MigdReadBufferInput *input;
};

G_DEFINE_TYPE(MigdReadBufferStream, migd_read_buffer_stream, G_TYPE_IO_STREAM)

static GInputStream *
migd_read_buffer_stream_get_input_stream(GIOStream *stream)
{
	return G_INPUT_STREAM(MIGD_READ_BUFFER_STREAM(stream)->input);
}

static GOutputStream *
migd_read_buffer_stream_get_output_stream(GIOStream *stream)
{
	return g_io_stream_get_output_stream(MIGD_READ_BUFFER_STREAM(stream)->base);
}

static gboolean
migd_read_buffer_stream_close(GIOStream *stream, GCancellable *cancellable, GError **error)
{
	MigdReadBufferStream *self = MIGD_READ_BUFFER_STREAM(stream);

	g_input_stream_close(G_INPUT_STREAM(self->input), NULL, NULL);
	return g_io_stream_close(self->base, cancellable, error);
}

static void
migd_read_buffer_stream_finalize(GObject *object)
{
	MigdReadBufferStream *self = MIGD_READ_BUFFER_STREAM(object);

	g_clear_object(&self->input);
	g_clear_object(&self->base);
	G_OBJECT_CLASS(migd_read_buffer_stream_parent_class)->finalize(object);
}

static void
migd_read_buffer_stream_class_init(MigdReadBufferStreamClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GIOStreamClass *stream_class = G_IO_STREAM_CLASS(klass);

	object_class->finalize = migd_read_buffer_stream_finalize;
	stream_class->get_input_stream = migd_read_buffer_stream_get_input_stream;
	stream_class->get_output_stream = migd_read_buffer_stream_get_output_stream;
	stream_class->close_fn = migd_read_buffer_stream_close;
}

static void
migd_read_buffer_stream_init(MigdReadBufferStream *self)
{
}

GIOStream *
migd_read_buffer_stream_new(GIOStream *base, gsize buffer_size)
{
	MigdReadBufferStream *self;
	GInputStream *base_input;

	g_return_val_if_fail(G_IS_IO_STREAM(base), NULL);
	g_return_val_if_fail(buffer_size > 0, NULL);

	base_input = g_io_stream_get_input_stream(base);
	g_return_val_if_fail(G_IS_POLLABLE_INPUT_STREAM(base_input), NULL);

	self = g_object_new(MIGD_TYPE_READ_BUFFER_STREAM, NULL);
	self->base = g_object_ref(base);
	self->input = g_object_new(MIGD_TYPE_READ_BUFFER_INPUT, NULL);
	self->input->base = g_object_ref(base_input);
	self->input->size = buffer_size;
	self->input->buf = g_malloc(buffer_size);
	return G_IO_STREAM(self);
}

GIOStream *
migd_read_buffer_stream_get_base(GIOStream *stream)
{
	if (!MIGD_IS_READ_BUFFER_STREAM(stream))
		return NULL;
	return MIGD_READ_BUFFER_STREAM(stream)->base;
}
