<?php

declare(strict_types=1);

namespace Bgjob;

/** `403`: this client or listener may not make that request. */
class Forbidden extends BgjobException
{
}
