/* SPDX-License-Identifier: GPL-2.0 */
/* kml_state.h - KML's model state (kml.c, kml_fpu.c). */
#ifndef KML_STATE_H
#define KML_STATE_H

#include "lake_app.h"
#include "kml.h"

struct kml_state {
	struct kml_weights w;
	float mean[KML_FEATURES];	/* the current batch's (cpu_prepare) */
	float std[KML_FEATURES];
	CUdeviceptr d_w;
};

#endif /* KML_STATE_H */
