import { Module } from '@nestjs/common';
import { ControlGuard } from './control.guard.js';

/** The control routes' guard alone, below the gateway and lifecycle modules whose controllers use it. */
@Module({ providers: [ControlGuard], exports: [ControlGuard] })
export class ControlGuardModule {}
