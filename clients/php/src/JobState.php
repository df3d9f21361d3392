<?php

declare(strict_types=1);

namespace Bgjob;

/** What `queue:check` answers for a job. */
enum JobState: int
{
    /** In the waiting line: not started yet. */
    case Waiting = 0;
    /** Its module runs. */
    case Running = 1;
    /** Finished: its result waits to be fetched with get(). */
    case Done = 2;
}
