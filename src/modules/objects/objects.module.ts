import { Module } from '@nestjs/common';
import { ObjectCatalogue } from './object-catalogue.service.js';
import { ObjectsController } from './objects.controller.js';

/** The built-in offline object catalogue ({@link ObjectCatalogue}) and `GET /api/objects/<name>`. */
@Module({
  providers: [ObjectCatalogue],
  controllers: [ObjectsController],
  exports: [ObjectCatalogue],
})
export class ObjectsModule {}
