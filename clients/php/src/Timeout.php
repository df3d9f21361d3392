<?php

declare(strict_types=1);

namespace Bgjob;

/** `504` (the module ran past its time limit), `408` (the request did not arrive in time), or code 0: no answer within the client's timeout. */
class Timeout extends BgjobException
{
}
