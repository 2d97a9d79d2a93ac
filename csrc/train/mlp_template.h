/* The forward and backward passes of an MLP (Dense, Dropout and activation layers) in one
 * call each, over buffers the caller allocated once: a training step is a few calls into
 * C, not a chain of calls per layer. Define MT (float|double) and MP (s|d) before including. */
#define M_CAT2(a, b) a##b
#define M_CAT(a, b) M_CAT2(a, b)
#define MF(name) M_CAT(M_CAT(fastfc_, MP), name)

int MF(mlp_forward)(int nthreads, int64_t batch, const MT *x, int n, fastfc_layer *L)
{
    const MT *h = x;
    int64_t ldh = n ? L[0].in : 0; /* h's row stride */
    for (int i = 0; i < n; i++) {
        const fastfc_layer *l = &L[i];
        MT *y = l->y;
        const int64_t ldy = l->ldy ? l->ldy : l->out;
        if (l->kind == FASTFC_LAYER_DENSE) {
            int rc = l->wh && l->wnr
                         ? MF(gemm_bf16_panels)(nthreads, batch, l->out, l->in, 1, h, ldh, 1,
                                                l->wh, l->wnr, 0, y, ldy, 1, l->b, l->act,
                                                (MT)l->slope)
                     : l->wh ? MF(gemm_bf16)(nthreads, batch, l->out, l->in, 1, h, ldh, 1,
                                             l->wh, l->out, 0, y, ldy, 1, l->b, l->act,
                                             (MT)l->slope)
                     : l->wp ? MF(gemm_panels)(nthreads, batch, l->out, l->in, 1, h, ldh, 1,
                                               l->wp, l->wnr, 0, y, ldy, 1, l->b, l->act,
                                               (MT)l->slope)
                     : l->gw ? MF(gemm_trained)(nthreads, batch, l->out, l->in, h, ldh, l->w,
                                                l->out, y, ldy, l->b, l->act, (MT)l->slope)
                     : MF(gemm)(nthreads, batch, l->out, l->in, 1, h, ldh, 1, l->w, l->out,
                                1, 0, y, ldy, 1, l->b, l->act, (MT)l->slope);
            if (rc) return rc;
            h = y;
            ldh = ldy;
            continue;
        }
        /* elementwise layers see whole rows: the plan pads only what a Dense reads */
        FASTFC_ASSERT(ldh == l->in && ldy == l->out);
        if (l->kind == FASTFC_LAYER_DROPOUT) {
            MF(dropout)(nthreads, batch * l->in, h, l->p, l->seed, l->stream, y, l->mask);
        } else {
            MF(act_forward)(nthreads, batch * l->in, h, l->act, (MT)l->slope, y);
        }
        h = y;
    }
    return 0;
}

int MF(mlp_backward)(int nthreads, int64_t batch, const MT *x, MT *g, int n, fastfc_layer *L)
{
    int lowest = n;   /* the gradient is needed down to the lowest Dense only */
    for (int i = 0; i < n; i++)
        if (L[i].kind == FASTFC_LAYER_DENSE) { lowest = i; break; }
    for (int i = n - 1; i >= lowest; i--) {
        const fastfc_layer *l = &L[i];
        const MT *h = i ? (const MT *)L[i - 1].y : x;
        if (l->kind == FASTFC_LAYER_DENSE) {
            /* dX = dZ.W^T and dW = X^T.dZ, dZ = act'(y) * g made as g is packed, db with it */
            fastfc_gemm_spec dx = {0}, dw = {l->in, l->out, batch, h, 1, l->in,
                                   g, l->out, 1, l->gw, l->out, 1,
                                   2, l->act, l->slope, l->y, l->out, 1, l->gb,
                                   l->nonfinite};
            if (i > lowest)
                dx = (fastfc_gemm_spec){batch, l->in, l->out, g, l->out, 1, l->w, 1, l->out,
                                        l->gx, l->in, 1, 1, l->act, l->slope, l->y, l->out, 1};
            /* dW's rows on the seats that read W's in the forward, where Adam takes them */
            int64_t rows[FASTFC_ROW_OWNERS_MAX_SEATS + 1];
            if ((dw.row_seats = fastfc_row_owner_rows(l->w, rows))) dw.rows = rows;
            if (MF(gemm_pair)(nthreads, &dx, &dw)) return -1;
            /* dW was checked as its tiles were stored; db here */
            if (l->nonfinite && l->gb && !MF(all_finite)(1, l->out, l->gb)) *l->nonfinite = 1;
            g = l->gx;
        } else if (l->kind == FASTFC_LAYER_DROPOUT) {
            MF(dropout_backward)(nthreads, batch * l->in, g, l->mask, (MT)(1 / (1 - l->p)), g);
        } else {
            MF(act_backward)(nthreads, batch, l->in, g, l->in, 1, l->y, l->in, 1, l->act,
                             (MT)l->slope, g, NULL);
        }
    }
    return 0;
}

int MF(mlp_xent_step)(int nthreads, int64_t batch, const MT *x, const int64_t *labels, MT *g,
                      int n, fastfc_layer *L, double *loss)
{
    if (MF(mlp_forward)(nthreads, batch, x, n, L)) return -1;
    const int64_t classes = L[n - 1].out;
    double total = MF(softmax_xent)(batch, classes, L[n - 1].y, classes, labels,
                                    (MT)(1.0 / batch), g, NULL);
    if (total == -1)
        for (int64_t i = 0; i < batch; i++)
            if (labels[i] < 0 || labels[i] >= classes) return -2;
    *loss = total / batch;
    return MF(mlp_backward)(nthreads, batch, x, g, n, L);
}

#undef MF
#undef MT
#undef MP
