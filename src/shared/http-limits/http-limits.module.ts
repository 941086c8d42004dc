import { Module } from '@nestjs/common';
import { HttpLimits } from './http-limits.js';

/** The connection caps and refusal log alone, below the gateway and lifecycle modules that read them. */
@Module({ providers: [HttpLimits], exports: [HttpLimits] })
export class HttpLimitsModule {}
