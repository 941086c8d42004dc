import { Module } from '@nestjs/common';
import { ViewerGateModule } from '../../shared/viewer-gate/viewer-gate.module.js';
import { FileStorage } from '../web-assets/file-storage.repository.js';
import { HistoryController } from './history.controller.js';
import { HistoryService } from './history.service.js';

/**
 * The night's history (`h/` in the web folder): previews and metrics of every version,
 * within `historyBudgetMb`; `GET /api/history`, `/h/<version>.jpg`, the timelapse.
 * PublishingModule records each version through {@link HistoryService}.
 */
@Module({
  imports: [ViewerGateModule],
  providers: [HistoryService, FileStorage],
  controllers: [HistoryController],
  exports: [HistoryService],
})
export class HistoryModule {}
