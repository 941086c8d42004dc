import { Module } from '@nestjs/common';
import { ViewerGate } from './viewer-gate.js';

/** The gate alone, below the gateway and web-assets modules that read it, so no import runs back up. */
@Module({ providers: [ViewerGate], exports: [ViewerGate] })
export class ViewerGateModule {}
